"""Loki Telemetry API extension (standard library only)."""
