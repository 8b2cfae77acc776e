"""harness.real_loki: binaries are verified before use, and a stopped server restarts on its data."""

from __future__ import annotations

import hashlib
import json
import lzma
import time
from pathlib import Path

import pytest

from harness.real_loki import BinaryError, RealLoki, _binaries, binary, missing_reason


def _fake_binaries(folder: Path, content: bytes, listed_digest: str) -> None:
    (folder / "loki-3.4.6.xz").write_bytes(lzma.compress(content, format=lzma.FORMAT_XZ))
    (folder / "SHA256SUMS").write_text(f"{listed_digest}  loki-3.4.6\n")


def test_binary_is_unpacked_once_into_a_folder_named_by_its_checksum(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    content = b"#!/bin/sh\necho fake loki\n"
    digest = hashlib.sha256(content).hexdigest()
    _fake_binaries(tmp_path, content, digest)
    monkeypatch.setenv("LOKI_BINARIES_DIR", str(tmp_path))
    monkeypatch.setattr(_binaries, "CACHE_DIR", tmp_path / "cache")
    path = binary("3.4.6")
    assert path == tmp_path / "cache" / digest / "loki-3.4.6"
    assert path.read_bytes() == content
    assert path.stat().st_mode & 0o111
    # A second call trusts the verified copy (the xz file is not read again).
    (tmp_path / "loki-3.4.6.xz").write_bytes(b"not xz any more")
    assert binary("3.4.6") == path


def test_binary_with_a_wrong_checksum_is_refused_and_not_cached(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_binaries(tmp_path, b"tampered", "0" * 64)
    monkeypatch.setenv("LOKI_BINARIES_DIR", str(tmp_path))
    monkeypatch.setattr(_binaries, "CACHE_DIR", tmp_path / "cache")
    with pytest.raises(BinaryError, match="SHA256SUMS says 0000"):
        binary("3.4.6")
    assert not list((tmp_path / "cache").rglob("loki-*"))


def test_missing_binary_is_named_with_the_way_to_point_at_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOKI_BINARIES_DIR", str(tmp_path))
    assert "loki-2.7.7.xz not found (set LOKI_BINARIES_DIR)" in missing_reason("2.7.7")
    with pytest.raises(BinaryError):
        binary("2.7.7")


def test_stop_then_start_keeps_ports_and_stored_entries(real_loki: dict[str, RealLoki]) -> None:
    # One version is enough to prove the harness; the e2e tier runs outages on all three.
    loki = real_loki.get("3.4.6") or pytest.skip(missing_reason("3.4.6"))
    now = time.time_ns()
    body = json.dumps({"streams": [{"stream": {"test": "restart"}, "values": [[str(now), "before"]]}]})
    assert loki.push(body.encode(), {"Content-Type": "application/json"})[0] == 204
    url = loki.push_url
    loki.stop()
    assert not loki.running
    loki.start()
    assert loki.push_url == url
    assert [e.line for e in loki.entries('{test="restart"}')] == ["before"]
