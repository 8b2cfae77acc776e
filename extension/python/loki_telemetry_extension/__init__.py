"""Loki Telemetry API extension, the Python build: ships a Lambda function's logs to Loki.

The house rules, each enforced by a test in tests/extension:

1. Standard library only: the layer runs on whatever Python the function has, isolated
   (``-I -S``), with nothing installed (test_rules.py).
2. The init path (register, listener, subscribe, first ``next``) imports only ``_socket``,
   ``_thread`` and the few modules ``os`` needs, plus this package's init modules; everything
   else (threading, json, zlib, the Loki client, credentials) is built by a warm-up thread once
   ``next`` is on the wire (test_init_imports.py). Cold starts pay for every import here.
3. The per-line path in ``records.RecordConverter.convert`` is inlined for speed; the general
   path (``_one``) is the reference and the two must agree (test_records_fast_path.py).
4. Never crash, never exit before SHUTDOWN (that is ``Extension.Crash`` and resets the
   environment), never slow the function beyond the chosen flush mode's wait: anything that
   goes wrong turns the extension into a no-op that keeps answering Lambda (test_lifecycle.py).
5. Every line lost is counted (``Stats.drops``) and reported, on stderr and in Loki, with the
   one text of ``drop_report`` (test_dispatcher.py, test_drop_report.py).
6. Configuration never raises: each bad value gives a message naming the variable, the rule,
   what was found and the value used instead; the texts are the native build's too
   (test_config.py).
7. Memory: the buffer counts what queued entries really cost, so ``LOKI_MAX_BUFFER_BYTES``
   bounds RSS (test_batch.py).
8. One definition of each contract: environment variables in ``envvars`` (shared with the
   construct and the native build), entry shapes in ``entries``, Telemetry/Extensions API event
   names in ``platform_events``, the drop report in ``drop_report``, connections through
   ``http11.connect``, the version in ``envvars.EXTENSION_VERSION``.

Module map: docs/extension-python.md.
"""
