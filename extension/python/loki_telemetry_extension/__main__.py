"""Entry point: ``python -m loki_telemetry_extension`` or the layer's launcher."""

from __future__ import annotations

from .lifecycle import main

if __name__ == "__main__":
    main()
