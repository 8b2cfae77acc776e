"""loki-telemetry-construct."""
