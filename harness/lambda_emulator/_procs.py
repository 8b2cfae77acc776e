"""Subprocesses of the sandbox: start, read output line by line, freeze, kill.

Every process gets its own process group (``start_new_session``) so SIGSTOP,
SIGCONT and SIGKILL reach the children it spawns too.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import select
import signal
import socket
import subprocess
import termios
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

#: Frame header of awslambdaric's telemetry log fd: type, length, timestamp (big-endian).
FRAME_HEADER_BYTES = 16
_READ_CHUNK = 1 << 16

LineSink = Callable[[str, float], None]
FrameSink = Callable[[str, int, float], None]


class PipeReader:
    """Reads one pipe on a thread; ``drained()`` tells when everything written so far
    has been handed to the sink (the pipe is empty and the thread is not mid-chunk)."""

    def __init__(
        self, fd: int, name: str, on_line: LineSink | None = None, on_frame: FrameSink | None = None
    ):
        self.fd = fd
        self._on_line = on_line
        self._on_frame = on_frame
        self._cond = threading.Condition()
        self._busy = False
        self._eof = False
        self._partial = b""
        self.thread = threading.Thread(target=self._run, name=f"reader-{name}", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        poller = select.poll()
        poller.register(self.fd, select.POLLIN | select.POLLHUP)
        try:
            while True:
                poller.poll()
                with self._cond:
                    # Marked busy before reading, so drained() never sees an empty pipe
                    # while bytes are in this thread's hands.
                    self._busy = True
                try:
                    chunk = os.read(self.fd, _READ_CHUNK)
                except OSError:
                    chunk = b""
                with self._cond:
                    if chunk:
                        self._consume(chunk, time.time())
                    else:
                        self._flush_partial()
                        self._eof = True
                    self._busy = False
                    self._cond.notify_all()
                if not chunk:
                    return
        finally:
            os.close(self.fd)

    def _consume(self, chunk: bytes, now: float) -> None:
        data = self._partial + chunk
        if self._on_frame is not None:
            while len(data) >= FRAME_HEADER_BYTES:
                length = int.from_bytes(data[4:8], "big")
                if len(data) < FRAME_HEADER_BYTES + length:
                    break
                ftype = int.from_bytes(data[0:4], "big")
                micros = int.from_bytes(data[8:16], "big")
                msg = data[FRAME_HEADER_BYTES : FRAME_HEADER_BYTES + length]
                data = data[FRAME_HEADER_BYTES + length :]
                self._on_frame(msg.decode("utf-8", "replace"), ftype, micros / 1e6)
            self._partial = data
            return
        *lines, self._partial = data.split(b"\n")
        assert self._on_line is not None
        for line in lines:
            self._on_line(line.decode("utf-8", "replace") + "\n", now)

    def _flush_partial(self) -> None:
        if self._partial and self._on_line is not None:
            # A line without its newline yet: Lambda emits it as it stands.
            self._on_line(self._partial.decode("utf-8", "replace"), time.time())
            self._partial = b""

    def drained(self, timeout_s: float, flush_partial: bool = True) -> bool:
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while True:
                if self._eof:
                    return True
                try:
                    pending = _pending_bytes(self.fd)
                except OSError:
                    return True
                if not self._busy and pending == 0:
                    if flush_partial:
                        self._flush_partial()
                    return True
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                # Woken by the reader after each chunk; the short cap covers the gap
                # between a write and the reader's poll() returning.
                self._cond.wait(min(left, 0.002))


def _pending_bytes(fd: int) -> int:
    buf = fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0")
    return int.from_bytes(buf, "little")


class ManagedProcess:
    """One sandbox process (runtime or extension) with captured output."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str],
        cwd: str | os.PathLike[str],
        on_line: LineSink,
        on_exit: Callable[[ManagedProcess, int], None],
        telemetry_fd_sink: FrameSink | None = None,
        keep_lines: int = 10_000,
        preexec_fn: Callable[[], None] | None = None,
    ) -> None:
        self.name = name
        self.stdout_lines: deque[str] = deque(maxlen=keep_lines)
        self.stderr_lines: deque[str] = deque(maxlen=keep_lines)
        self.returncode: int | None = None
        self.exited = threading.Event()
        self._on_exit = on_exit
        child_env = dict(env)
        pass_fds: tuple[int, ...] = ()
        frame_r = frame_w = -1
        if telemetry_fd_sink is not None:
            frame_r, frame_w = os.pipe()
            child_env["_LAMBDA_TELEMETRY_LOG_FD"] = str(frame_w)
            pass_fds = (frame_w,)
        self.started_at = time.monotonic()
        self.proc = subprocess.Popen(
            list(argv),
            env=child_env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            pass_fds=pass_fds,
            preexec_fn=preexec_fn,
        )
        self.pid = self.proc.pid
        assert self.proc.stdout is not None and self.proc.stderr is not None
        out_fd = os.dup(self.proc.stdout.fileno())
        err_fd = os.dup(self.proc.stderr.fileno())
        self.proc.stdout.close()
        self.proc.stderr.close()

        def _out(line: str, ts: float) -> None:
            self.stdout_lines.append(line)
            on_line(line, ts)

        def _err(line: str, ts: float) -> None:
            self.stderr_lines.append(line)
            on_line(line, ts)

        self.readers = [PipeReader(out_fd, f"{name}-out", _out), PipeReader(err_fd, f"{name}-err", _err)]
        if telemetry_fd_sink is not None:
            os.close(frame_w)
            self.readers.append(PipeReader(frame_r, f"{name}-frames", on_frame=telemetry_fd_sink))
        self._waiter = threading.Thread(target=self._wait, name=f"wait-{name}", daemon=True)
        self._waiter.start()

    def _wait(self) -> None:
        rc = self.proc.wait()
        self.returncode = rc
        self.exited.set()
        self._on_exit(self, rc)

    @property
    def alive(self) -> bool:
        return not self.exited.is_set()

    def signal_group(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, sig)

    def freeze(self) -> None:
        self.signal_group(signal.SIGSTOP)

    def wait_stopped(self, timeout_s: float) -> bool:
        """SIGSTOP is asynchronous: poll /proc until the process shows ``T``."""
        deadline = time.monotonic() + timeout_s
        while True:
            st = self.state()
            if st in ("T", "t", "X", "Z"):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.0005)  # a bounded poll of kernel state, not a synchronisation stand-in

    def thaw(self) -> None:
        self.signal_group(signal.SIGCONT)

    def state(self) -> str:
        """The process's state letter from /proc (``T`` while frozen), or ``X`` when gone."""
        return proc_state(self.pid)

    def drained(self, timeout_s: float) -> bool:
        return all(r.drained(max(0.0, timeout_s)) for r in self.readers)

    def kill(self) -> None:
        # SIGKILL works on stopped processes too; SIGCONT is not needed first.
        self.signal_group(signal.SIGKILL)

    def join_output(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        for r in self.readers:
            r.thread.join(max(0.0, deadline - time.monotonic()))


def proc_state(pid: int) -> str:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return "X"
    # The command name (field 2) may contain spaces and parentheses: split after the last ')'.
    return stat.rsplit(")", 1)[1].split()[0]


def max_rss_mb(pid: int) -> int:
    """Peak resident set size (VmHWM) in MB, 0 when unknown."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) // 1024
    except OSError:
        pass
    return 0


class LogSocketServer:
    """``_LAMBDA_TELEMETRY_LOG_FD_PROVIDER_SOCKET``: with Managed Instances' concurrency,
    awslambdaric's forked workers each connect here and put the connection on their stdout
    and stderr, so every worker's lines arrive on a stream of their own and concurrent
    requests cannot cut each other's lines (an unbuffered print is two writes)."""

    def __init__(self, path: Path, on_line: LineSink) -> None:
        self.path = path
        self._on_line = on_line
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.bind(str(path))
        self._sock.listen(64)
        self._lock = threading.Lock()
        self.readers: list[PipeReader] = []
        self._closed = False
        self._thread = threading.Thread(target=self._accept, name="log-socket", daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return  # closed
            fd = os.dup(conn.fileno())
            conn.close()
            with self._lock:
                if self._closed:
                    os.close(fd)
                    return
                self.readers.append(PipeReader(fd, f"worker-{len(self.readers)}", self._on_line))

    def drained(self, timeout_s: float) -> bool:
        with self._lock:
            readers = list(self.readers)
        return all(r.drained(max(0.0, timeout_s)) for r in readers)

    def join_output(self, timeout_s: float) -> None:
        """Wait until every worker stream has been read to its end (the workers exited)."""
        deadline = time.monotonic() + timeout_s
        with self._lock:
            readers = list(self.readers)
        for r in readers:
            r.thread.join(max(0.0, deadline - time.monotonic()))

    def close(self) -> None:
        with self._lock:
            self._closed = True
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._sock.close()
        with contextlib.suppress(OSError):
            self.path.unlink()
