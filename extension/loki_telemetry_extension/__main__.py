"""Entry point: see lifecycle.main."""

def main() -> None:
    print("[loki-telemetry-extension] placeholder", flush=True)
