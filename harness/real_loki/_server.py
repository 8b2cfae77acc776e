"""One real Loki process: configuration, start, readiness, stop, queries."""

from __future__ import annotations

import atexit
import contextlib
import http.client
import json
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import urllib.parse
import weakref
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import MappingProxyType, TracebackType
from typing import Any

from harness._shared.ports import free_port
from harness.loki_receiver.model import StoredEntry

from ._binaries import VERSIONS, binary, missing_reason

#: Loki prints "ready" on /ready 15-20 s after start on a shared 2-core machine; 90 s leaves
#: room for three versions starting at once next to other work.
READY_TIMEOUT_S = 90.0
#: Loki's SIGTERM handler flushes and closes the WAL; it takes 1-3 s here. Then SIGKILL.
STOP_TIMEOUT_S = 20.0
#: A port picked free can be taken by another process before Loki binds it: retry that.
START_ATTEMPTS = 3
#: ``max_entries_limit_per_query`` default in every version: one query returns at most this many.
QUERY_LIMIT = 5000
#: ``max_query_length`` default is 721h; a little less so a window never hits it.
MAX_QUERY_WINDOW_NS = 720 * 3600 * 10**9

_EMPTY: Mapping[str, str] = MappingProxyType({})


#: Every server started by this process, so none outlives it and no temporary folder is left
#: (Loki runs in its own session, out of reach of the terminal's Ctrl-C).
_running: weakref.WeakSet[RealLoki] = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    for server in list(_running):
        server.close()


class QueryError(RuntimeError):
    """Loki answered a query with an error."""


def available() -> tuple[str, ...]:
    """The versions whose binary and checksum are present (see :func:`missing_reason`)."""
    return tuple(v for v in VERSIONS if not missing_reason(v))


def _config(version: str, data: Path, http_port: int, grpc_port: int, memberlist_port: int) -> str:
    """The README's loopback + filesystem configuration, per version.

    2.9.17 and 3.4.6: schema v13 on TSDB. 2.7.7: schema v11 on boltdb-shipper (it predates
    v13) and no memberlist block. ``query_ingesters_within: 0`` makes queries ask the ingesters
    for every time range, so entries with old timestamps are visible without a flush, and no
    query is split by time. Nothing that decides a push is changed: the limits stay at each
    version's defaults, which is what tests compare with.
    """
    if version.startswith("2.7."):
        schema = "{from: 2020-10-24, store: boltdb-shipper, object_store: filesystem, schema: v11, " \
                 "index: {prefix: index_, period: 24h}}"
        memberlist = ""
    else:
        schema = "{from: 2020-10-24, store: tsdb, object_store: filesystem, schema: v13, " \
                 "index: {prefix: index_, period: 24h}}"
        memberlist = (
            f"memberlist: {{bind_addr: [127.0.0.1], advertise_addr: 127.0.0.1, "
            f"bind_port: {memberlist_port}}}\n"
        )
    return (
        "auth_enabled: false\n"
        f"server: {{http_listen_address: 127.0.0.1, http_listen_port: {http_port}, "
        f"grpc_listen_address: 127.0.0.1, grpc_listen_port: {grpc_port}, log_level: warn}}\n"
        "common:\n"
        "  instance_addr: 127.0.0.1\n"
        f"  path_prefix: {data}\n"
        f"  storage: {{filesystem: {{chunks_directory: {data}/chunks, rules_directory: {data}/rules}}}}\n"
        "  replication_factor: 1\n"
        "  ring: {kvstore: {store: inmemory}}\n"
        f"schema_config:\n  configs: [{schema}]\n"
        f"{memberlist}"
        "querier: {query_ingesters_within: 0}\n"
        # One sub-query per 30 min (2.x) or 1 h (3.x) made a 720 h query take seconds.
        "limits_config: {split_queries_by_interval: 0}\n"
        "analytics: {reporting_enabled: false}\n"
    )


class RealLoki:
    """A real Loki process on 127.0.0.1 with its own data folder. A context manager.

    ``stop()`` then ``start()`` restarts the same process configuration on the same ports and
    data folder (an outage: the WAL brings back what was stored). ``close()`` (or leaving the
    ``with`` block) stops it and deletes the data folder.
    """

    def __init__(self, version: str, *, workdir: Path | None = None) -> None:
        if version not in VERSIONS:
            raise ValueError(f"unknown Loki version {version!r}; known: {', '.join(VERSIONS)}")
        self.version = version
        self._own_dir = workdir is None
        # Made at the first start(), so an object that never runs leaves nothing behind.
        self._workdir = workdir
        self.http_port = 0
        self._grpc_port = 0
        self._memberlist_port = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()

    # --- addresses -------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def push_url(self) -> str:
        """Where to push (what LOKI_URL should be)."""
        return f"{self.base_url}/loki/api/v1/push"

    @property
    def workdir(self) -> Path:
        """The server's folder: its configuration, its log and its data."""
        if self._workdir is None:
            self._workdir = Path(tempfile.mkdtemp(prefix=f"loki-{self.version}-"))
        return self._workdir

    @property
    def log_path(self) -> Path:
        return self.workdir / "loki.log"

    @property
    def old_entries_queryable(self) -> bool:
        """Whether entries older than ~3 h can be read back within seconds (after ``flush()``).

        2.9.17 and 3.4.6: yes, their ingester serves the TSDB index of what it flushed. 2.7.7
        (boltdb-shipper): no; it stores them, but queries find them only once the index is
        uploaded, minutes later, and recent entries drop out of queries for a while after a
        flush too. Read 2.7.7 back without flushing.
        """
        return not self.version.startswith("2.7.")

    @property
    def structured_metadata(self) -> bool:
        """Whether this version stores structured metadata with its default limits (3.x only)."""
        return not self.version.startswith("2.")

    # --- lifecycle -------------------------------------------------------------

    def start(self) -> RealLoki:
        """Start (or restart on the same ports and data) and return once /ready answers 200."""
        with self._lock:
            if self._proc is not None and self._proc.poll() is None:
                return self
            exe = binary(self.version)
            keep_ports = self.http_port != 0
            last = ""
            for _ in range(START_ATTEMPTS):
                if not keep_ports:
                    self.http_port, self._grpc_port, self._memberlist_port = (
                        free_port(), free_port(), free_port()
                    )
                config = self.workdir / "loki.yaml"
                config.write_text(
                    _config(self.version, self.workdir / "data", self.http_port, self._grpc_port,
                            self._memberlist_port)
                )
                with self.log_path.open("ab") as log:
                    self._proc = subprocess.Popen(
                        [str(exe), f"-config.file={config}"],
                        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                        cwd=self.workdir, start_new_session=True,
                    )
                _running.add(self)
                last = self._wait_ready()
                if not last:
                    return self
                self._kill(graceful=False)
                if "address already in use" not in last or keep_ports:
                    break
            raise RuntimeError(f"real Loki {self.version} did not become ready: {last}")

    def _wait_ready(self) -> str:
        """"" once /ready answers 200; else why not (the log's tail)."""
        proc = self._proc
        assert proc is not None
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                return f"exited with {proc.returncode}: {self._log_tail()}"
            with contextlib.suppress(OSError, http.client.HTTPException):
                if self._get("/ready", timeout=2.0)[0] == 200:
                    return ""
            # Polling an outside process's readiness: there is nothing to wait on instead.
            time.sleep(0.25)
        return f"not ready after {READY_TIMEOUT_S:.0f} s: {self._log_tail()}"

    def _log_tail(self, n: int = 2000) -> str:
        try:
            return self.log_path.read_bytes()[-n:].decode("utf-8", "replace")
        except OSError:
            return ""

    def _kill(self, graceful: bool = True) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        if graceful:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(STOP_TIMEOUT_S)
                return
            except subprocess.TimeoutExpired:
                pass
        proc.kill()
        proc.wait()

    def stop(self) -> None:
        """SIGTERM (SIGKILL after 20 s); the data folder and ports are kept for ``start()``."""
        with self._lock:
            self._kill()

    @property
    def running(self) -> bool:
        proc = self._proc
        return proc is not None and proc.poll() is None

    def close(self) -> None:
        """Stop and delete the data folder (when this object made it).

        With the data about to be deleted there is nothing to flush: SIGKILL at once (a
        SIGTERM'd Loki takes 5-10 s to flush and leave the ring).
        """
        with self._lock:
            self._kill(graceful=not self._own_dir)
        if self._own_dir and self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

    def __enter__(self) -> RealLoki:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"RealLoki({self.version!r}, base_url={self.base_url!r}, running={self.running})"

    # --- HTTP ------------------------------------------------------------------

    def _request(
        self, method: str, path: str, body: bytes | None = None, headers: Mapping[str, str] | None = None,
        timeout: float = 30.0,
    ) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=dict(headers or {}))
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()

    def _get(self, path: str, timeout: float = 30.0) -> tuple[int, bytes]:
        return self._request("GET", path, timeout=timeout)

    def push(self, body: bytes, headers: Mapping[str, str], *, path: str = "/loki/api/v1/push"
             ) -> tuple[int, bytes]:
        """POST `body` as is; returns (status, response body)."""
        return self._request("POST", path, body, headers)

    def flush(self) -> None:
        """``POST /flush``: the ingesters write their chunks to storage (asynchronously)."""
        status, body = self._request("POST", "/flush")
        if status >= 300:
            raise QueryError(f"POST /flush: {status} {body[:500]!r}")

    def config_text(self) -> str:
        """The running configuration (``GET /config``), defaults included, as YAML text."""
        status, body = self._get("/config")
        if status != 200:
            raise QueryError(f"GET /config: {status}")
        return body.decode()

    def query_range(self, query: str, **params: str | int) -> dict[str, Any]:
        """``GET /loki/api/v1/query_range``; the decoded JSON ``data`` object.

        Keep results under Loki's 4 MiB gRPC message limit: ask for fewer lines, or reduce
        each line with ``| line_format``.
        """
        qs = urllib.parse.urlencode({"query": query, **{k: str(v) for k, v in params.items()}})
        headers = {"X-Loki-Response-Encoding-Flags": "categorize-labels"} if self.structured_metadata else {}
        status, body = self._request("GET", f"/loki/api/v1/query_range?{qs}", headers=headers)
        if status != 200:
            raise QueryError(f"query_range {query!r}: {status} {body[:500].decode('utf-8', 'replace')}")
        data: dict[str, Any] = json.loads(body)["data"]
        return data

    def entries(
        self,
        selector: str,
        *,
        start_ns: int | None = None,
        end_ns: int | None = None,
        pipeline: str = "",
    ) -> list[StoredEntry]:
        """Every stored entry matching `selector` in [start, end), oldest first, as ``StoredEntry``.

        Defaults: the last 720 h up to 1 h ahead (Loki accepts 10 min ahead). Pages through
        5,000 entries per query. `pipeline` (e.g. ``| line_format "{{len __line__}}"``) is
        appended to the selector to keep big results under 4 MiB. Structured metadata comes
        back in ``metadata`` (3.x), not folded into the labels.
        """
        now = time.time_ns()
        end = now + 3600 * 10**9 if end_ns is None else end_ns
        start = max(end - MAX_QUERY_WINDOW_NS, 0) if start_ns is None else start_ns
        out: list[StoredEntry] = []
        skip_at: tuple[int, int] = (-1, 0)  # (timestamp, entries already taken at it)
        query = f"{selector} {pipeline}".strip()
        while True:
            data = self.query_range(query, start=start, end=end, limit=QUERY_LIMIT, direction="forward")
            page = sorted(_decode_streams(data["result"]), key=lambda e: e.ts_ns)
            fresh = page
            if skip_at[0] >= 0:
                # The page starts at the previous page's last timestamp: drop what was taken.
                drop = 0
                while drop < len(page) and drop < skip_at[1] and page[drop].ts_ns == skip_at[0]:
                    drop += 1
                fresh = page[drop:]
            out.extend(fresh)
            if len(page) < QUERY_LIMIT:
                return out
            last = page[-1].ts_ns
            taken = sum(1 for e in page if e.ts_ns == last)
            if last == skip_at[0]:
                taken += skip_at[1]
            if taken >= QUERY_LIMIT:
                raise QueryError(f"more than {QUERY_LIMIT} entries share timestamp {last}")
            skip_at, start = (last, taken), last


def _decode_streams(result: Iterable[Mapping[str, Any]]) -> list[StoredEntry]:
    entries: list[StoredEntry] = []
    for stream in result:
        labels = MappingProxyType(dict(stream["stream"]))
        for value in stream["values"]:
            metadata: Mapping[str, str] = _EMPTY
            if len(value) > 2 and value[2].get("structuredMetadata"):
                metadata = MappingProxyType(dict(value[2]["structuredMetadata"]))
            entries.append(StoredEntry(labels, int(value[0]), value[1], metadata))
    return entries


def start_all(versions: Iterable[str] | None = None) -> dict[str, RealLoki]:
    """Start the given versions (default: every available one) in parallel threads.

    Start-up (15-20 s each) dominates, so three in parallel take about as long as one.
    Raises the first start-up error after stopping whatever did start.
    """
    wanted = tuple(available() if versions is None else versions)
    servers = {v: RealLoki(v) for v in wanted}
    with ThreadPoolExecutor(max_workers=max(len(servers), 1)) as pool:
        futures = {v: pool.submit(s.start) for v, s in servers.items()}
        errors = [f.exception() for f in futures.values()]
    failed = [e for e in errors if e is not None]
    if failed:
        for s in servers.values():
            s.close()
        raise failed[0]
    return servers
