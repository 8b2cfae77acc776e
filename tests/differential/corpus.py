"""The differential corpus: push requests built in code, sent byte for byte to real Loki and to
the receiver.

Every stream a case means to be stored carries the label ``dcase="<case name>"``, so each
case's stored entries are found with ``{dcase="<name>"}`` whatever else the server holds.
Timestamps are relative to the ``now_ns`` given to :func:`build`, so one corpus can be sent
to every server within the same few seconds.
"""

from __future__ import annotations

import gzip
import json
import time
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from loki_telemetry_extension import batch

PUSH = "/loki/api/v1/push"
LEGACY_PUSH = "/api/prom/push"
JSON_CT = {"Content-Type": "application/json"}

S = 1_000_000_000
MINUTE = 60 * S
HOUR = 60 * MINUTE
DAY = 24 * HOUR

#: Loki 3.x ``max_line_size`` "256KB": flagext.ByteSize reads it as 256 KiB.
LINE_LIMIT_3 = 262_144


@dataclass(frozen=True)
class Push:
    body: bytes
    headers: Mapping[str, str] = field(default_factory=lambda: dict(JSON_CT))
    path: str = PUSH
    method: str = "POST"


@dataclass(frozen=True)
class Case:
    name: str
    pushes: tuple[Push, ...]
    #: Versions the case is meant for ("" = every version): a prefix such as "2." or "3.".
    only: str = ""
    #: Lines too big to return in one query (4 MiB gRPC limit): compare lengths and a prefix.
    big: bool = False
    #: Appended to the ``dcase`` label value, so one server can take the corpus more than once.
    tag: str = ""
    #: Carries a timestamp over an hour old: read back after a flush (see runner.run).
    old: bool = False

    @property
    def selector(self) -> str:
        return f'{{dcase="{self.name}{self.tag}"}}'

    def applies_to(self, version: str) -> bool:
        return version.startswith(self.only)


def _gzip(b: bytes) -> bytes:
    return gzip.compress(b)


def _raw_deflate(b: bytes) -> bytes:
    c = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return c.compress(b) + c.flush()


def build(now_ns: int, tag: str = "") -> list[Case]:
    """About 130 cases; see the section comments for what each group covers."""
    cases: list[Case] = []
    names: set[str] = set()
    #: The oldest timestamp offset used since the last case was added.
    oldest = [0]

    def labels(name: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        return {"dcase": name + tag, "job": "diff", **(extra or {})}

    def doc(streams: Sequence[tuple[Mapping[str, Any], Sequence[Any]]]) -> bytes:
        return json.dumps({"streams": [{"stream": s, "values": list(v)} for s, v in streams]}).encode()

    def ts(offset_ns: int = 0) -> str:
        oldest[0] = min(oldest[0], offset_ns)
        return str(now_ns + offset_ns)

    def add(name: str, *pushes: Push, only: str = "", big: bool = False) -> None:
        # Bodies are built (ts() called) before add(): what ts() saw belongs to this case.
        assert name not in names, name
        names.add(name)
        cases.append(Case(name, tuple(pushes), only, big, tag, old=oldest[0] < -HOUR))
        oldest[0] = 0

    def one(
        name: str,
        values: Sequence[Any],
        *,
        extra: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        encode: Callable[[bytes], bytes] = lambda b: b,
        path: str = PUSH,
        only: str = "",
        big: bool = False,
    ) -> None:
        """A case of one push with one stream labelled for `name`."""
        body = encode(doc([(labels(name, extra), values)]))
        add(name, Push(body, dict(JSON_CT if headers is None else headers), path), only=only, big=big)

    def raw(name: str, body: bytes, headers: Mapping[str, str] | None = None, path: str = PUSH) -> None:
        add(name, Push(body, dict(JSON_CT if headers is None else headers), path))

    # --- the baseline ---------------------------------------------------------------
    one("plain", [[ts(), "hello"], [ts(1), "world"]])
    one("many_entries", [[ts(i), f"line {i}"] for i in range(200)])
    one("two_streams_one_push_a", [[ts(), "a"]])
    add("two_streams", Push(doc([(labels("two_streams", {"s": "1"}), [[ts(), "one"]]),
                                 (labels("two_streams", {"s": "2"}), [[ts(), "two"]])])))
    add("same_labels_twice", Push(doc([(labels("same_labels_twice"), [[ts(), "first"]]),
                                       (labels("same_labels_twice"), [[ts(1), "second"]])])))

    # --- encodings ------------------------------------------------------------------
    one("gzip", [[ts(), "zipped"]], headers={**JSON_CT, "Content-Encoding": "gzip"}, encode=_gzip)
    one("gzip_multi_member", [[ts(), "two members"]], headers={**JSON_CT, "Content-Encoding": "gzip"},
        encode=lambda b: _gzip(b[:10]) + _gzip(b[10:]))
    one("deflate_raw", [[ts(), "raw deflate"]], headers={**JSON_CT, "Content-Encoding": "deflate"},
        encode=_raw_deflate)
    one("deflate_zlib_wrapped", [[ts(), "zlib"]], headers={**JSON_CT, "Content-Encoding": "deflate"},
        encode=zlib.compress)
    one("encoding_br", [[ts(), "br"]], headers={**JSON_CT, "Content-Encoding": "br"})
    one("encoding_zstd", [[ts(), "zstd"]], headers={**JSON_CT, "Content-Encoding": "zstd"})
    one("encoding_identity", [[ts(), "identity"]], headers={**JSON_CT, "Content-Encoding": "identity"})
    one("encoding_snappy_json", [[ts(), "snappy header, JSON body"]],
        headers={**JSON_CT, "Content-Encoding": "snappy"})
    one("encoding_gzip_upper", [[ts(), "GZIP"]], headers={**JSON_CT, "Content-Encoding": "GZIP"},
        encode=_gzip)
    one("gzip_corrupt", [[ts(), "corrupt"]], headers={**JSON_CT, "Content-Encoding": "gzip"},
        encode=lambda b: _gzip(b)[:12] + b"\x00garbage" + _gzip(b)[12:])
    one("gzip_truncated", [[ts(), "truncated"]], headers={**JSON_CT, "Content-Encoding": "gzip"},
        encode=lambda b: _gzip(b)[:-12])
    one("gzip_of_plain_header_missing", [[ts(), "gzip body, no encoding header"]], encode=_gzip)

    # --- content types --------------------------------------------------------------
    one("ct_missing", [[ts(), "x"]], headers={})
    one("ct_empty", [[ts(), "x"]], headers={"Content-Type": ""})
    one("ct_charset", [[ts(), "x"]], headers={"Content-Type": "application/json; charset=utf-8"})
    one("ct_upper", [[ts(), "x"]], headers={"Content-Type": "Application/JSON"})
    one("ct_text_plain", [[ts(), "x"]], headers={"Content-Type": "text/plain"})
    one("ct_protobuf_json_body", [[ts(), "x"]], headers={"Content-Type": "application/x-protobuf"})
    one("ct_form", [[ts(), "x"]], headers={"Content-Type": "application/x-www-form-urlencoded"})
    one("ct_garbage", [[ts(), "x"]], headers={"Content-Type": "not a media type"})

    # --- malformed JSON and shapes --------------------------------------------------
    raw("body_empty", b"")
    raw("body_whitespace", b"  \n")
    raw("body_truncated", b'{"streams":[')
    raw("body_array", b"[]")
    raw("body_null", b"null")
    raw("body_string", b'"streams"')
    raw("streams_null", b'{"streams":null}')
    raw("streams_object", b'{"streams":{}}')
    raw("streams_string", b'{"streams":"x"}')
    raw("stream_null", b'{"streams":[null]}')
    raw("stream_empty_object", b'{"streams":[{}]}')
    raw("stream_not_object", b'{"streams":[1]}')
    raw("trailing_garbage", doc([(labels("trailing_garbage"), [[ts(), "x"]])]) + b"}}garbage")
    raw("unknown_top_field", b'{"extra":1,' + doc([(labels("unknown_top_field"), [[ts(), "x"]])])[1:])
    raw("unknown_stream_field", json.dumps({"streams": [{"stream": labels("unknown_stream_field"),
        "values": [[ts(), "x"]], "extra": {"a": [1, 2]}}]}).encode())
    raw("labels_number_value", json.dumps({"streams": [{
        "stream": {"dcase": "labels_number_value" + tag, "n": 1}, "values": [[ts(), "x"]]}]}).encode())
    raw("labels_null", json.dumps({"streams": [{"stream": None, "values": [[ts(), "x"]]}]}).encode())
    raw("labels_missing", json.dumps({"streams": [{"values": [[ts(), "x"]]}]}).encode())
    raw("values_null", json.dumps({"streams": [{"stream": labels("values_null"), "values": None}]}).encode())
    raw("values_object",
        json.dumps({"streams": [{"stream": labels("values_object"), "values": {}}]}).encode())
    one("entry_not_list", ["x"])
    one("entry_empty_list", [[]])
    one("entry_ts_only", [[ts()]])
    one("ts_number", [[now_ns, "x"]])
    one("ts_not_digits", [["abc", "x"]])
    one("ts_float_string", [["1.5", "x"]])
    one("ts_negative", [["-1", "x"]])
    one("ts_plus_sign", [["+" + ts(), "x"]])
    one("ts_empty_string", [["", "x"]])
    one("ts_overflow", [["99999999999999999999999", "x"]])
    one("ts_zero", [["0", "x"]])
    one("line_number", [[ts(), 42]])
    one("line_null", [[ts(), None]])
    one("line_object", [[ts(), {"a": "b"}]])
    one("entry_four_elements", [[ts(), "x", {"a": "b"}, "extra"]])
    raw("invalid_utf8_line", doc([(labels("invalid_utf8_line"), [[ts(), "PLACEHOLDER"]])])
        .replace(b"PLACEHOLDER", b"bad \xff\xfe bytes"))
    raw("escaped_unicode", doc([(labels("escaped_unicode"), [[ts(), "caf\u00e9 \u2603 \U0001f600"]])]))
    raw("bom_prefix", b"\xef\xbb\xbf" + doc([(labels("bom_prefix"), [[ts(), "x"]])]))
    raw("duplicate_keys", json.dumps({"streams": [{"stream": labels("duplicate_keys"),
        "values": [[ts(), "x"]]}]}).encode().replace(b'"job": "diff"', b'"job": "one", "job": "two"'))

    # --- empty pushes ---------------------------------------------------------------
    raw("empty_object", b"{}")
    raw("empty_streams", b'{"streams":[]}')
    one("empty_values", [])
    add("empty_and_full", Push(doc([(labels("empty_and_full", {"s": "e"}), []),
                                    (labels("empty_and_full", {"s": "f"}), [[ts(), "kept"]])])))
    one("empty_line", [[ts(), ""]])
    one("whitespace_line", [[ts(), " "]])

    # --- labels ---------------------------------------------------------------------
    raw("no_labels", doc([({}, [[ts(), "x"]])]))
    raw("only_empty_label_value", doc([({"dcase": ""}, [[ts(), "x"]])]))
    one("empty_value_dropped", [[ts(), "x"]], extra={"empty": ""})
    one("name_starts_with_digit", [[ts(), "x"]], extra={"1a": "v"})
    one("name_with_dash", [[ts(), "x"]], extra={"a-b": "v"})
    one("name_with_dot", [[ts(), "x"]], extra={"a.b": "v"})
    one("name_unicode", [[ts(), "x"]], extra={"caf\u00e9": "v"})
    one("name_empty", [[ts(), "x"]], extra={"": "v"})
    one("name_reserved", [[ts(), "x"]], extra={"__name__": "v"})
    one("name_dunder_other", [[ts(), "x"]], extra={"__x": "v"})
    one("name_len_1024", [[ts(), "x"]], extra={"n" * 1024: "v"})
    one("name_len_1025", [[ts(), "x"]], extra={"n" * 1025: "v"})
    one("value_len_2048", [[ts(), "x"]], extra={"v": "v" * 2048})
    one("value_len_2049", [[ts(), "x"]], extra={"v": "v" * 2049})
    one("value_multibyte_2049_bytes", [[ts(), "x"]], extra={"v": "\u00e9" * 1024 + "v"})
    one("value_quotes_newline", [[ts(), "x"]], extra={"v": 'a "quoted"\nvalue\\'})
    one("value_unicode", [[ts(), "x"]], extra={"v": "\u2603 caf\u00e9"})
    for count in (15, 16, 30, 31):
        # dcase and job count too.
        one(f"label_count_{count}", [[ts(), "x"]], extra={f"l{i}": "v" for i in range(count - 2)})
    one("label_count_15_with_service_name", [[ts(), "x"]],
        extra={**{f"l{i}": "v" for i in range(13)}, "service_name": "svc"})
    add("invalid_label_in_second_stream", Push(doc([
        (labels("invalid_label_in_second_stream", {"s": "ok"}), [[ts(), "x"]]),
        (labels("invalid_label_in_second_stream", {"a-b": "v"}), [[ts(), "y"]]),
    ])))
    add("invalid_label_on_empty_stream", Push(doc([
        (labels("invalid_label_on_empty_stream", {"s": "ok"}), [[ts(), "x"]]),
        (labels("invalid_label_on_empty_stream", {"a-b": "v"}), []),
    ])))
    add("too_many_labels_in_one_stream", Push(doc([
        (labels("too_many_labels_in_one_stream", {"s": "ok"}), [[ts(), "x"]]),
        (labels("too_many_labels_in_one_stream", {f"l{i}": "v" for i in range(40)}), [[ts(), "y"]]),
    ])))

    # --- service_name discovery (3.x adds it) --------------------------------------
    for lab in ("service", "app", "job", "container", "k8s_job_name"):
        one(f"service_from_{lab}", [[ts(), "x"]], extra={lab: f"from-{lab}"})
    one("service_precedence", [[ts(), "x"]], extra={"app": "the-app", "service": "the-service"})
    raw("service_unknown", doc([({"dcase": "service_unknown" + tag}, [[ts(), "x"]])]))
    one("service_name_given", [[ts(), "x"]], extra={"service_name": "given"})
    one("service_empty_value_skipped", [[ts(), "x"]], extra={"service": "", "app": "the-app"})

    # --- line sizes -----------------------------------------------------------------
    one("line_at_3x_limit", [[ts(), "a" * LINE_LIMIT_3]], big=True)
    one("line_over_3x_limit", [[ts(), "a" * (LINE_LIMIT_3 + 1)]], big=True)
    one("line_256000", [[ts(), "a" * 256_000]], big=True)
    one("line_multibyte_at_limit", [[ts(), "\u00e9" * (LINE_LIMIT_3 // 2)]], big=True)
    one("line_multibyte_over_limit", [[ts(), "\u00e9" * (LINE_LIMIT_3 // 2) + "a"]], big=True)
    one("line_1mb", [[ts(), "b" * 1_000_000]], big=True)
    one("line_over_limit_partial",
        [[ts(), "small"], [ts(1), "c" * (LINE_LIMIT_3 + 10)], [ts(2), "also small"]], big=True)

    # --- timestamps -----------------------------------------------------------------
    one("ts_one_day_old", [[ts(-DAY), "x"]])
    one("ts_six_days_old", [[ts(-6 * DAY), "x"]])
    one("ts_eight_days_old", [[ts(-8 * DAY), "x"]])
    one("ts_five_min_future", [[ts(5 * MINUTE), "x"]])
    one("ts_eleven_min_future", [[ts(11 * MINUTE), "x"]])
    one("ts_seconds_not_ns", [[str(now_ns // S), "x"]])
    one("ts_mixed_valid_and_old", [[ts(), "fresh"], [ts(-8 * DAY), "old"], [ts(20 * MINUTE), "future"]])

    # --- order and duplicates -------------------------------------------------------
    one("out_of_order_in_push", [[ts(3), "c"], [ts(1), "a"], [ts(2), "b"]])
    def two(name: str, first: Sequence[Any], second: Sequence[Any]) -> None:
        """Two pushes, one after the other, to the same stream."""
        add(name, Push(doc([(labels(name), first)])), Push(doc([(labels(name), second)])))

    two("out_of_order_across_pushes", [[ts(10), "later"]], [[ts(), "earlier"]])
    two("too_far_behind", [[ts(), "new"]], [[ts(-2 * HOUR), "old"]])
    two("within_window_behind", [[ts(), "new"]], [[ts(-30 * MINUTE), "ok"]])
    name = "too_far_behind_in_one_push"
    add(name, Push(doc([(labels(name), [[ts(), "new"], [ts(-2 * HOUR), "old"], [ts(1), "newer"]])])))
    two("old_first_then_new", [[ts(-2 * HOUR), "old"]], [[ts(), "new"]])
    one("duplicate_in_push", [[ts(), "same"], [ts(), "same"]])
    name = "duplicate_across_pushes"
    add(name, Push(doc([(labels(name), [[ts(), "same"]])])), Push(doc([(labels(name), [[ts(), "same"]])])))
    one("same_ts_different_lines", [[ts(), "one"], [ts(), "two"], [ts(), "three"]])
    one("line_with_newlines_and_nul", [[ts(), "a\nb\r\nc\u0000d\ttab"]])
    one("ts_leading_zeros", [["0" + ts(), "x"]])
    add("many_streams",
        Push(doc([(labels("many_streams", {"s": str(i)}), [[ts(i), f"s{i}"]]) for i in range(100)])))
    one("tenant_header_without_auth", [[ts(), "x"]], headers={**JSON_CT, "X-Scope-OrgID": "team-a"})
    one("same_line_different_ts", [[ts(), "same"], [ts(1), "same"]])
    one("duplicate_with_different_metadata", [[ts(), "same", {"a": "1"}], [ts(), "same", {"a": "2"}]],
        only="3.")
    name = "duplicate_not_last"
    add(name, Push(doc([(labels(name), [[ts(), "a"], [ts(1), "b"]])])),
        Push(doc([(labels(name), [[ts(), "a"]])])))

    # --- structured metadata in every shape -----------------------------------------
    one("sm_simple", [[ts(), "x", {"trace_id": "abc"}]])
    one("sm_empty_object", [[ts(), "x", {}]])
    one("sm_many_keys", [[ts(), "x", {f"k{i}": f"v{i}" for i in range(10)}]])
    one("sm_number_value", [[ts(), "x", {"a": 1}]])
    one("sm_null_value", [[ts(), "x", {"a": None}]])
    one("sm_bool_value", [[ts(), "x", {"a": True}]])
    one("sm_nested_object", [[ts(), "x", {"a": {"b": "c"}}]])
    one("sm_array", [[ts(), "x", ["a", "b"]]])
    one("sm_string", [[ts(), "x", "a=b"]])
    one("sm_null", [[ts(), "x", None]])
    one("sm_invalid_key", [[ts(), "x", {"a-b": "v"}]])
    one("sm_key_starts_with_digit", [[ts(), "x", {"1a": "v"}]])
    # 3.4.6 stores an empty metadata name, then answers every query of the stream with 500:
    # nothing to compare there.
    one("sm_empty_key", [[ts(), "x", {"": "v"}]], only="2.")
    one("sm_empty_value", [[ts(), "x", {"a": ""}]])
    one("sm_unicode", [[ts(), "x", {"k": "caf\u00e9 \u2603"}]])
    one("sm_on_some_entries", [[ts(), "plain"], [ts(1), "with", {"a": "b"}], [ts(2), "plain again"]])
    add("sm_in_one_stream_of_two", Push(doc([
        (labels("sm_in_one_stream_of_two", {"s": "plain"}), [[ts(), "plain"]]),
        (labels("sm_in_one_stream_of_two", {"s": "meta"}), [[ts(), "meta", {"a": "b"}]]),
    ])))
    one("sm_size_at_limit", [[ts(), "x", {"k": "v" * (64 * 1024 - 1)}]])
    one("sm_size_over_limit", [[ts(), "x", {"k": "v" * (64 * 1024)}]])
    one("sm_size_64000", [[ts(), "x", {"k": "v" * (64_000 - 1)}]])
    one("sm_128_entries", [[ts(), "x", {f"k{i}": "v" for i in range(128)}]])
    one("sm_129_entries", [[ts(), "x", {f"k{i}": "v" for i in range(129)}]])
    one("sm_detected_level_given", [[ts(), "level=error x", {"detected_level": "custom"}]])
    one("sm_level_key", [[ts(), "x", {"level": "WARN"}]])
    one("sm_service_name_key", [[ts(), "x", {"service_name": "from-metadata"}]])
    one("sm_same_key_as_label", [[ts(), "x", {"job": "meta"}]])
    one("sm_gzip", [[ts(), "x", {"a": "b"}]], headers={**JSON_CT, "Content-Encoding": "gzip"}, encode=_gzip)
    one("sm_number_element", [[ts(), "x", 5]])
    one("sm_bool_element", [[ts(), "x", True]])
    one("sm_quotes_backslash", [[ts(), "x", {"k": 'say "hi" \\ back'}]])
    shipped = {"request_id": "8f5c2a4e-1b2c-4d5e-9f00-123456789abc", "level": "INFO"}
    one("sm_what_the_extension_sends", [[ts(), '{"level":"INFO","message":"m"}', shipped]],
        headers={**JSON_CT, "Content-Encoding": "gzip"}, encode=_gzip)

    # --- level detection (3.x stores detected_level) ---------------------------------
    level_lines = {
        "lvl_json_level": '{"level":"error","msg":"m"}',
        "lvl_json_severity": '{"severity":"WARNING"}',
        "lvl_json_nested": '{"a":{"level":"debug"}}',
        "lvl_json_number": '{"level":3}',
        "lvl_logfmt": "ts=1 level=warn msg=x",
        "lvl_logfmt_lvl": "lvl=dbg msg=x",
        "lvl_logfmt_unknown_value": "level=verbose msg=x",
        "lvl_bracket_error": "[ERROR] boom",
        "lvl_word_info": "some info here",
        "lvl_word_warning": "a warning",
        "lvl_word_debug": "debug stuff",
        "lvl_err_colon": "err: bad",
        "lvl_critical": "CRITICAL: down",
        "lvl_fatal_word": "fatal thing",
        "lvl_none": "nothing to see",
        "lvl_lambda_report": "REPORT RequestId: 1 Duration: 2.00 ms",
        "lvl_lambda_python_error": "[ERROR]\t2024-01-01T00:00:00Z\treq\tboom",
        "lvl_json_level_info_word": '{"msg":"information"}',
    }
    for case_name, line in level_lines.items():
        one(case_name, [[ts(), line]])
    one("lvl_level_label", [[ts(), "no level in line"]], extra={"level": "warn"})
    one("lvl_metadata_lvl", [[ts(), "no level"], [ts(1), "x", {"lvl": "error"}]])

    # --- partial acceptance ---------------------------------------------------------
    one("partial_old_long_future", [[ts(), "ok"], [ts(-8 * DAY), "old"], [ts(1), "d" * (LINE_LIMIT_3 + 1)],
                                    [ts(30 * MINUTE), "future"], [ts(2), "ok too"]], big=True)
    add("partial_two_streams", Push(doc([
        (labels("partial_two_streams", {"s": "good"}), [[ts(), "good"]]),
        (labels("partial_two_streams", {"s": "bad"}), [[ts(-8 * DAY), "old"]]),
    ])))
    one("partial_many_errors", [[ts(-8 * DAY - i), f"old {i}"] for i in range(12)] + [[ts(), "kept"]])

    # --- big bodies (the ingester's gRPC limit is 4 MiB) ----------------------------
    one("body_3mib", [[ts(i), "e" * 250_000] for i in range(12)], big=True)
    one("body_4_5mib", [[ts(i), "f" * 250_000] for i in range(18)], big=True)
    one("body_4_5mib_gzip", [[ts(i), "g" * 250_000] for i in range(18)], big=True,
        headers={**JSON_CT, "Content-Encoding": "gzip"}, encode=_gzip)
    add("body_5mib_two_streams", Push(doc([
        (labels("body_5mib_two_streams", {"s": "1"}), [[ts(i), "h" * 250_000] for i in range(10)]),
        (labels("body_5mib_two_streams", {"s": "2"}), [[ts(i), "i" * 250_000] for i in range(10)]),
    ])), big=True)

    # --- the legacy path ------------------------------------------------------------
    one("legacy_path", [[ts(), "legacy"]], path=LEGACY_PUSH)
    one("legacy_path_gzip", [[ts(), "legacy zipped"]], path=LEGACY_PUSH,
        headers={**JSON_CT, "Content-Encoding": "gzip"}, encode=_gzip)
    one("legacy_path_metadata", [[ts(), "legacy", {"a": "b"}]], path=LEGACY_PUSH)
    one("legacy_path_too_old", [[ts(-8 * DAY), "legacy old"]], path=LEGACY_PUSH)

    def legacy(name: str, entries: Sequence[tuple[int, str]], headers: Mapping[str, str] = JSON_CT) -> None:
        """The legacy path's own JSON: label set as a string, RFC3339 timestamps."""
        def rfc3339(ns: int) -> str:
            secs, frac = divmod(ns, S)
            return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{frac // 1000:06d}Z"
        stream = {"labels": f'{{dcase="{name}{tag}", job="diff"}}',
                  "entries": [{"ts": rfc3339(now_ns + off), "line": line} for off, line in entries]}
        add(name, Push(json.dumps({"streams": [stream]}).encode(), dict(headers), LEGACY_PUSH))

    legacy("legacy_format", [(0, "legacy one"), (1000, "legacy two")])
    legacy("legacy_format_too_old", [(0, "fresh"), (-8 * DAY, "old")])

    # --- what the extension sends (its own encoder, so the corpus follows it) --------
    stream_labels = [labels("ext_metadata", {"function": "ingest", "source": "lambda"}),
                     labels("ext_folded", {"function": "ingest", "source": "lambda"}),
                     labels("ext_split", {"function": "ingest", "source": "lambda"})]
    meta = {"request_id": "8f5c2a4e-1b2c-4d5e-9f00-123456789abc", "level": "INFO"}
    lines = ['{"level":"INFO","message":"caf\u00e9 \"quoted\""}', "START RequestId: 8f5c2a4e",
             "plain \u2603 line"]
    for stream, metadata in ((0, True), (1, False)):
        entries = [(stream, int(ts(i)), line, meta) for i, line in enumerate(lines)]
        [(_, body)] = batch.encode_requests(batch.pack(entries, 0.0), stream_labels, metadata=metadata)
        add(stream_labels[stream]["dcase"].removesuffix(tag),
            Push(body, {**JSON_CT, "Content-Encoding": "gzip"}))
    parts = batch.split_line("x" * 600_000, 256_000)
    entries = [(2, int(ts(i)), part, None) for i, part in enumerate(parts)]
    [(_, body)] = batch.encode_requests(batch.pack(entries, 0.0), stream_labels, metadata=True)
    add("ext_split", Push(body, {**JSON_CT, "Content-Encoding": "gzip"}), big=True)

    # --- methods --------------------------------------------------------------------
    add("get_on_push", Push(b"", {}, PUSH, "GET"))
    add("put_on_push", Push(doc([(labels("put_on_push"), [[ts(), "put"]])]), dict(JSON_CT), PUSH, "PUT"))
    return cases
