"""The env-var contract shared with the extension, re-exported for the CDK side.

``_layer`` is the layer root (a symlink to ``extension/`` in a checkout, real files in
the wheel), so the construct writes exactly the names the extension reads.
"""

from __future__ import annotations

from ._layer.loki_telemetry_extension import envvars

__all__ = ["envvars"]
