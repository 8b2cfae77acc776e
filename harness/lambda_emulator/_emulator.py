"""The facade tests, the demo and bench program against: ``LambdaEmulator``."""

from __future__ import annotations

import atexit
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from . import _layers, _records, _runtimes, _sandbox
from ._api import ApiServer
from ._environment import Config, Environment, extension_environment
from ._procs import proc_state
from ._results import InitResult, InvokeResult, ShutdownResult
from ._telemetry import TelemetryHub, TelemetryStats

#: Lambda's documented PATH, with /var/lang/bin standing for the runtime interpreter's dir.
_BASE_PATH = "/usr/local/bin:/usr/bin/:/bin"
#: The emulator's own bound on what it holds for one subscriber before dropping (Lambda
#: does not document its figure; the buffer counts toward the function's memory).
DEFAULT_TELEMETRY_BUFFER_LIMIT_BYTES = 16 * 1024 * 1024
#: A delivery POST that takes longer is a failure and is retried.
DEFAULT_DELIVERY_TIMEOUT_S = 5.0
LOG_FORMATS = ("Text", "JSON")
SHUTDOWN_REASONS = ("spindown", "timeout", "failure")
#: Tenant isolation (aws-cdk-lib TenancyConfig.PER_TENANT).
PER_TENANT = "PER_TENANT"
#: Runtime workers per Managed Instances environment unless max_concurrency says otherwise;
#: Lambda's own default is larger and per vCPU, but this machine has 2 shared cores.
DEFAULT_MANAGED_CONCURRENCY = 4


#: Emulators with processes or a server to clean up, closed at interpreter exit at the latest.
_LIVE: weakref.WeakSet[LambdaEmulator] = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    # A frozen (SIGSTOPped) process would otherwise outlive a test run that exits early.
    for lam in list(_LIVE):
        lam.close()


class LambdaEmulator:
    """A local Lambda execution environment running a real handler through awslambdaric
    and every external extension of the given layers as subprocesses.

    >>> with LambdaEmulator(handler="app.handler", code_dir="fn", layers=["extension"]) as lam:
    ...     result = lam.invoke({"hello": "world"})
    """

    def __init__(
        self,
        *,
        handler: str,
        code_dir: str | os.PathLike[str],
        layers: Sequence[str | os.PathLike[str]] = (),
        env: Mapping[str, str] | None = None,
        function_name: str = "test-function",
        memory_mb: int = 128,
        timeout_s: float = 3.0,
        log_format: str = "Text",
        application_log_level: str | None = None,
        extension_python: str | os.PathLike[str] | None = None,
        runtime_python: str | os.PathLike[str] | None = None,
        region: str = "us-east-1",
        account_id: str = "123456789012",
        init_timeout_s: float = 10.0,
        shutdown_timeout_s: float = 2.0,
        runtime_shutdown_s: float = 0.3,
        telemetry_buffer_limit_bytes: int = DEFAULT_TELEMETRY_BUFFER_LIMIT_BYTES,
        delivery_timeout_s: float = DEFAULT_DELIVERY_TIMEOUT_S,
        runtime: str | None = None,
        node_binary: str | os.PathLike[str] | None = None,
        architecture: str = "x86_64",
        extension_sandbox: str | None = None,
        managed_instances: bool = False,
        max_concurrency: int | None = None,
        tenancy_config: str | None = None,
    ) -> None:
        if log_format not in LOG_FORMATS:
            raise ValueError(f"log_format must be one of {LOG_FORMATS}, got {log_format!r}")
        if runtime is not None and runtime not in _runtimes.RUNTIMES:
            raise ValueError(f"runtime must be one of {', '.join(_runtimes.RUNTIMES)}, got {runtime!r}")
        if architecture not in _sandbox.ARCHITECTURES:
            raise ValueError(f"architecture must be one of {_sandbox.ARCHITECTURES}, got {architecture!r}")
        if max_concurrency is not None and not managed_instances:
            raise ValueError(
                "max_concurrency needs managed_instances=True (classic Lambda runs one at a time)"
            )
        if max_concurrency is not None and max_concurrency < 1:
            raise ValueError(f"max_concurrency must be at least 1, got {max_concurrency}")
        if tenancy_config not in (None, PER_TENANT):
            raise ValueError(f"tenancy_config must be None or {PER_TENANT!r}, got {tenancy_config!r}")
        if extension_sandbox is not None and extension_sandbox not in _sandbox.SANDBOXES:
            raise ValueError(
                f"extension_sandbox must be None or one of {_sandbox.SANDBOXES}, got {extension_sandbox!r}"
            )
        self.handler = handler
        self.code_dir = Path(code_dir).resolve()
        if not self.code_dir.is_dir():
            raise FileNotFoundError(f"code_dir {self.code_dir} does not exist")
        self.layers = [Path(p) for p in layers]
        self.user_env = dict(env or {})
        self.function_name = function_name
        self.memory_mb = memory_mb
        self.timeout_s = timeout_s
        self.log_format = log_format
        self.application_log_level = application_log_level
        self.runtime_python = str(runtime_python or sys.executable)
        self.extension_python = str(extension_python or self.runtime_python)
        self.region = region
        self.account_id = account_id
        self.init_timeout_s = init_timeout_s
        self.shutdown_timeout_s = shutdown_timeout_s
        self.runtime_shutdown_s = runtime_shutdown_s
        self.delivery_timeout_s = delivery_timeout_s
        self.telemetry_buffer_limit_bytes = telemetry_buffer_limit_bytes
        self.runtime = runtime
        self.node_binary = node_binary
        self.architecture = architecture
        self.extension_sandbox = extension_sandbox
        self._sandbox_root: Path | None = None
        self.managed_instances = managed_instances
        self.max_concurrency = max_concurrency or DEFAULT_MANAGED_CONCURRENCY if managed_instances else None
        self.tenancy_config = tenancy_config
        # Serialises start/reset/shutdown when invokes run on several threads (Managed Instances).
        self._lifecycle = threading.RLock()

        #: Counters over the emulator's whole life (across environment resets).
        self.stats = TelemetryStats()
        #: Lifecycle trace: (monotonic seconds, what, who), e.g. (t, "register", "ext").
        self.events: list[tuple[float, str, str]] = []
        #: Every reset (timeout, crash) with the ShutdownResult of the ended environment.
        self.resets: list[tuple[str, ShutdownResult]] = []
        self.init_results: list[InitResult] = []
        #: Every InvokeResult, in order (per-invoke timings for bench).
        self.invoke_results: list[InvokeResult] = []
        self._events_lock = threading.Lock()
        self._env: Environment | None = None
        self._last_env: Environment | None = None
        self._tmp: Path | None = None
        self._server: ApiServer | None = None
        self._api_address: str | None = None

    # ------------------------------------------------------------------ context manager
    def __enter__(self) -> LambdaEmulator:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            if self._env is not None and exc_type is None:
                self.shutdown()
        finally:
            self.close()

    # ------------------------------------------------------------------ set-up
    def _prepare(self) -> None:
        if self._tmp is not None:
            return
        self._tmp = Path(tempfile.mkdtemp(prefix="lambda-emulator-"))
        _LIVE.add(self)
        opt = self._tmp / "opt"
        opt.mkdir()
        _layers.merge(self.layers, opt)
        bin_dir = self._tmp / "bin"
        bin_dir.mkdir()
        # The extension launcher falls back to `python3` on PATH: point it at the
        # interpreter the caller chose (e.g. each of Python 3.10-3.13).
        (bin_dir / "python3").symlink_to(self.extension_python)
        self._server = ApiServer(lambda: self._env)
        self._server.start()
        self._api_address = self._server.address

    @property
    def opt_dir(self) -> Path:
        self._prepare()
        assert self._tmp is not None
        return self._tmp / "opt"

    @property
    def runtime_api(self) -> str:
        """``127.0.0.1:<port>``, the value of AWS_LAMBDA_RUNTIME_API (kept after close)."""
        if self._api_address is None:
            self._prepare()
        assert self._api_address is not None
        return self._api_address

    def _python_version(self) -> tuple[int, int]:
        if Path(self.runtime_python).resolve() == Path(sys.executable).resolve():
            return sys.version_info[:2]
        out = subprocess.run(
            [self.runtime_python, "-c", "import sys; print(sys.version_info[0], sys.version_info[1])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.split()
        return int(out[0]), int(out[1])

    def _config(self) -> Config:
        opt = self.opt_dir
        assert self._tmp is not None
        python_family = self.runtime is None or self.runtime.startswith("python")
        major, minor = self._python_version() if python_family else (0, 0)
        rt = _runtimes.resolve(self.runtime, (major, minor))
        runtime_bin = str(Path(self.runtime_python).parent)
        log_stream = time.strftime("%Y/%m/%d") + f"/[$LATEST]{secrets.token_hex(16)}"
        runtime_env: dict[str, str] = {**self.user_env}
        # Lambda's reserved variables win over the user's, as Lambda refuses to let them be set.
        runtime_env.update(
            {
                "AWS_LAMBDA_FUNCTION_NAME": self.function_name,
                "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(self.memory_mb),
                "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{self.function_name}",
                "AWS_LAMBDA_LOG_STREAM_NAME": log_stream,
                "AWS_LAMBDA_INITIALIZATION_TYPE": (
                    _records.MANAGED_INSTANCES if self.managed_instances else _records.ON_DEMAND
                ),
                "AWS_LAMBDA_RUNTIME_API": self.runtime_api,
                "AWS_LAMBDA_LOG_FORMAT": self.log_format,
                "AWS_REGION": self.region,
                "AWS_DEFAULT_REGION": self.region,
                "_HANDLER": self.handler,
                "LAMBDA_TASK_ROOT": str(self.code_dir),
                "LANG": "en_US.UTF-8",
                "TZ": ":UTC",
            }
        )
        if rt.execution_env is not None:
            runtime_env["AWS_EXECUTION_ENV"] = rt.execution_env
        runtime_argv: tuple[str, ...]
        if rt.family == "python":
            runtime_env["LAMBDA_RUNTIME_DIR"] = runtime_bin
            runtime_env["PATH"] = f"{runtime_bin}:{_BASE_PATH}:{opt / 'bin'}"
            runtime_env["PYTHONPATH"] = os.pathsep.join(
                [
                    str(self.code_dir),
                    str(opt / "python" / "lib" / f"python{major}.{minor}" / "site-packages"),
                    str(opt / "python"),
                ]
            )
            runtime_argv = (self.runtime_python, "-m", "awslambdaric", self.handler)
        elif rt.family == "nodejs":
            node = _runtimes.find_node(self.node_binary)
            runtime_env["LAMBDA_RUNTIME_DIR"] = str(_runtimes.NODE_CLIENT.parent)
            runtime_env["PATH"] = f"{Path(node).parent}:{_BASE_PATH}:{opt / 'bin'}"
            runtime_env["NODE_PATH"] = _runtimes.node_path(opt, rt, self.code_dir)
            runtime_argv = (node, str(_runtimes.NODE_CLIENT))
        else:
            bootstrap = self.code_dir / "bootstrap"
            runtime_env["LAMBDA_RUNTIME_DIR"] = str(self.code_dir)
            runtime_env["PATH"] = f"{_BASE_PATH}:{opt / 'bin'}"
            runtime_argv = (str(bootstrap),)
            if self.architecture == "arm64" and _sandbox.is_aarch64(bootstrap):
                runtime_argv = (_sandbox.find_qemu(), str(bootstrap))
        if self.application_log_level:
            runtime_env["AWS_LAMBDA_LOG_LEVEL"] = self.application_log_level
        log_socket = None
        if self.max_concurrency is not None:
            runtime_env["AWS_LAMBDA_MAX_CONCURRENCY"] = str(self.max_concurrency)
            if rt.family == "python":
                log_socket = self._tmp / f"log-{secrets.token_hex(4)}.sock"
                runtime_env["_LAMBDA_TELEMETRY_LOG_FD_PROVIDER_SOCKET"] = str(log_socket)
        # Extensions see the same PATH as a Python function's (with the chosen `python3` first).
        ext_base = dict(runtime_env)
        ext_base["PATH"] = f"{runtime_bin}:{_BASE_PATH}:{opt / 'bin'}"
        extension_paths = tuple(_layers.external_extensions(opt))
        extension_env = extension_environment(ext_base, str(self._tmp / "bin"))
        extension_argv, preexec = self._extension_launch(opt, extension_paths)
        if preexec is not None:
            extension_env["PATH"] = _sandbox.SANDBOX_PATH
        return Config(
            handler=self.handler,
            code_dir=self.code_dir,
            opt_dir=opt,
            function_name=self.function_name,
            memory_mb=self.memory_mb,
            timeout_s=self.timeout_s,
            region=self.region,
            account_id=self.account_id,
            log_format=self.log_format,
            runtime_argv=runtime_argv,
            runtime_env=runtime_env,
            extension_env=extension_env,
            extension_paths=extension_paths,
            extension_argv=extension_argv,
            extension_preexec=preexec,
            managed_instances=self.managed_instances,
            log_socket=log_socket,
            init_timeout_s=self.init_timeout_s,
            shutdown_timeout_s=self.shutdown_timeout_s,
            runtime_shutdown_s=self.runtime_shutdown_s,
            runtime_version=rt.runtime_version,
        )

    def _extension_launch(
        self, opt: Path, paths: tuple[Path, ...]
    ) -> tuple[dict[str, tuple[str, ...]], Callable[[], None] | None]:
        """argv per extension (qemu first for an aarch64 ELF) and the sandbox's preexec."""
        arm = {p.name for p in paths if self.architecture == "arm64" and _sandbox.is_aarch64(p)}
        qemu = _sandbox.find_qemu() if arm else None
        if self.extension_sandbox is None:
            return {p.name: ((qemu, str(p)) if p.name in arm and qemu else (str(p),)) for p in paths}, None
        _sandbox.check_can_chroot()
        if self._sandbox_root is None:
            assert self._tmp is not None
            self._sandbox_root = self._tmp / "sandbox"
            _sandbox.build_root(self._sandbox_root, opt, qemu)
        argv: dict[str, tuple[str, ...]] = {}
        for p in paths:
            inside = f"/opt/extensions/{p.name}"
            argv[p.name] = (_sandbox.QEMU_IN_ROOT, inside) if p.name in arm else (inside,)
        return argv, _sandbox.chroot_into(self._sandbox_root)

    @property
    def sandbox_root(self) -> Path | None:
        """The no-Python sandbox's root directory on the host (its /tmp is ``<root>/tmp``)."""
        return self._sandbox_root

    def _trace(self, what: str, who: str) -> None:
        with self._events_lock:
            self.events.append((time.monotonic(), what, who))

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> InitResult:
        """Run the init phase; raises LambdaInitError (everything killed) when it fails."""
        if self._env is not None:
            raise RuntimeError("already started")
        cfg = self._config()
        hub = TelemetryHub(self.stats, self.telemetry_buffer_limit_bytes, self.delivery_timeout_s)
        env = Environment(cfg, hub, self._trace)
        self._env = env
        self._last_env = env
        try:
            result = env.init()
        except BaseException:
            env.close()
            self._env = None
            raise
        self.init_results.append(result)
        return result

    def invoke(
        self,
        event: Any = None,
        *,
        raw: bytes | None = None,
        timeout_s: float | None = None,
        tenant_id: str | None = None,
    ) -> InvokeResult:
        """Invoke once (re-initialising first if the last environment was reset).

        With ``managed_instances=True`` it may be called from several threads at once: the
        invokes then run concurrently in the one environment (see ``invoke_many``).
        """
        if (tenant_id is None) != (self.tenancy_config is None):
            raise ValueError(
                "tenant_id is required with tenancy_config='PER_TENANT' and refused without it, "
                f"got tenant_id={tenant_id!r}, tenancy_config={self.tenancy_config!r}"
            )
        with self._lifecycle:
            env = self._env
            if env is not None and env.crashes:
                # Something died while frozen or idle: Lambda resets before the next invoke.
                self._reset("failure")
                env = None
            if env is not None and env.tenant_id is None:
                env.tenant_id = tenant_id  # started (e.g. by __enter__) before its first invoke
            if env is not None and tenant_id is not None and env.tenant_id != tenant_id:
                # Tenant isolation: an environment only ever serves one tenant. Lambda would
                # route to (or create) that tenant's own; here the one environment is replaced.
                self._reset("spindown")
                env = None
            if env is None:
                self.start()
                env = self._env
                assert env is not None
                env.tenant_id = tenant_id
        body = raw if raw is not None else json.dumps(event).encode()
        result = env.invoke(body, self.timeout_s if timeout_s is None else timeout_s, tenant_id)
        self.invoke_results.append(result)
        if result.reset_reason is not None:
            with self._lifecycle:
                # Unless a shutdown (or a concurrent invoke) already ended this environment.
                if self._env is env:
                    self._reset(result.reset_reason)
        return result

    def invoke_many(
        self,
        events: Sequence[Any],
        *,
        timeout_s: float | None = None,
        tenant_ids: Sequence[str] | None = None,
    ) -> list[InvokeResult]:
        """Invoke once per event, all at once (Managed Instances: they run concurrently in
        one environment; classic Lambda: one after the other). Results in event order."""
        if tenant_ids is not None and len(tenant_ids) != len(events):
            raise ValueError("tenant_ids must have one entry per event")
        tenants: list[str | None] = list(tenant_ids) if tenant_ids is not None else [None] * len(events)
        if not self.managed_instances:
            return [
                self.invoke(e, timeout_s=timeout_s, tenant_id=t) for e, t in zip(events, tenants, strict=True)
            ]
        if self._env is None:
            self.start()
            assert self._env is not None
            self._env.tenant_id = tenants[0] if tenants else None
        results: list[InvokeResult | BaseException | None] = [None] * len(events)

        def run(i: int) -> None:
            try:
                results[i] = self.invoke(events[i], timeout_s=timeout_s, tenant_id=tenants[i])
            except BaseException as exc:  # re-raised in the caller's thread below
                results[i] = exc

        threads = [threading.Thread(target=run, args=(i,), name=f"invoke-{i}") for i in range(len(events))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        out: list[InvokeResult] = []
        for r in results:
            if isinstance(r, BaseException):
                raise r
            assert r is not None
            out.append(r)
        return out

    def _reset(self, reason: str) -> None:
        env = self._env
        assert env is not None
        try:
            res = env.shutdown(reason)
        finally:
            env.close()
            self._env = None
        self.resets.append((reason, res))

    def shutdown(self, reason: str = "spindown") -> ShutdownResult:
        """The SHUTDOWN phase: event to extensions, SIGTERM runtime, SIGKILL at the deadline."""
        if reason not in SHUTDOWN_REASONS:
            raise ValueError(f"reason must be one of {SHUTDOWN_REASONS}, got {reason!r}")
        with self._lifecycle:
            env = self._env
            if env is None:
                raise RuntimeError("not started")
            try:
                return env.shutdown(reason)
            finally:
                env.close()
                self._env = None

    def close(self) -> None:
        """Kill everything and remove temporary files; safe to call twice."""
        if self._env is not None:
            self._env.close()
            self._env = None
        if self._server is not None:
            self._server.stop()
            self._server = None
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None
        _LIVE.discard(self)

    # ------------------------------------------------------------------ observability
    @property
    def started(self) -> bool:
        return self._env is not None

    @property
    def frozen(self) -> bool:
        return self._env is not None and self._env.frozen

    @property
    def function_records_emitted(self) -> int:
        """``function`` records produced so far (lines, or logging calls via the log fd)."""
        return self.stats.function_records

    @property
    def records_dropped(self) -> int:
        """Records the emulator dropped because a subscriber's buffer was full."""
        return self.stats.dropped_records

    @property
    def logs_dropped_sent(self) -> list[dict[str, Any]]:
        """Every ``platform.logsDropped`` record delivered."""
        return list(self.stats.logs_dropped_sent)

    def _env_or_last(self) -> Environment:
        env = self._env or self._last_env
        if env is None:
            raise RuntimeError("not started")
        return env

    @property
    def init_result(self) -> InitResult | None:
        """The latest successful init (a reset's re-init replaces it), or None."""
        return self.init_results[-1] if self.init_results else None

    def stderr_by_process(self) -> dict[str, list[str]]:
        """Captured stderr lines by process name ("runtime" and each extension)."""
        return self._env_or_last().stderr_by_process()

    @property
    def runtime_pid(self) -> int:
        env = self._env_or_last()
        assert env.runtime is not None
        return env.runtime.pid

    @property
    def extension_pids(self) -> dict[str, int]:
        return {n: p.pid for n, p in self._env_or_last().processes.items()}

    def extension_stderr(self, name: str | None = None) -> list[str]:
        """Captured stderr lines of one extension (or all, in name order)."""
        procs = self._env_or_last().processes
        names = [name] if name else sorted(procs)
        return [line for n in names for line in procs[n].stderr_lines]

    def extension_stdout(self, name: str | None = None) -> list[str]:
        procs = self._env_or_last().processes
        names = [name] if name else sorted(procs)
        return [line for n in names for line in procs[n].stdout_lines]

    def runtime_output(self) -> list[str]:
        """The runtime's captured stdout then stderr lines (not log-fd frames)."""
        env = self._env_or_last()
        assert env.runtime is not None
        return list(env.runtime.stdout_lines) + list(env.runtime.stderr_lines)

    def process_states(self) -> dict[str, str]:
        """State letter from /proc of the runtime and each extension (``T`` = frozen)."""
        env = self._env_or_last()
        states = {n: proc_state(p.pid) for n, p in env.processes.items()}
        if env.runtime is not None:
            states["runtime"] = proc_state(env.runtime.pid)
        return states

    def subscriptions(self) -> dict[str, Any]:
        """Telemetry subscriptions of the current environment by extension name."""
        return dict(self._env_or_last().hub.subscribers())

    def pending_telemetry(self) -> int:
        """Records buffered for subscribers and not yet delivered."""
        return self._env_or_last().hub.pending()
