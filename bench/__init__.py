"""Benchmarks and fault figures (issue 5): ``python -m bench [--smoke] [--only NAME]``.

One module per figure (``init_overhead``, ``invoke_overhead``, ``cpu_per_line``, ``memory``,
``latency``, ``throughput``, ``synth_scaling``, ``faults``), each with ``NAME``, ``TITLE``
and ``run(ctx) -> FigureResult``; ``stats`` and ``model`` are shared, ``report`` renders
JSON and Markdown. See the README's Performance section.
"""
