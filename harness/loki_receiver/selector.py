"""LogQL stream selectors: ``{a="b", c=~"re", d!="x", e!~"re"}``.

Only the selector part of LogQL: pipelines (``|= "x"``, ``| json``) and metric
queries are rejected with a clear message, since this receiver only needs to
count what arrived. Regexes are fully anchored, as in Loki (Prometheus matchers);
Python's ``re`` stands in for Go's RE2 (same syntax for ordinary patterns).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

Op = Literal["=", "!=", "=~", "!~"]

_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'", "a": "\a", "b": "\b",
            "f": "\f", "v": "\v"}


class SelectorError(ValueError):
    """A query this receiver cannot answer; the message is shown to the client (HTTP 400)."""


@dataclass(frozen=True)
class Matcher:
    name: str
    op: Op
    value: str
    _re: re.Pattern[str] | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.op in ("=~", "!~"):
            try:
                # Frozen dataclass: compile once at construction.
                object.__setattr__(self, "_re", re.compile(f"^(?:{self.value})$", re.DOTALL))
            except re.error as exc:
                raise SelectorError(f"invalid regex {self.value!r} for label {self.name!r}: {exc}") from exc

    def matches(self, labels: Mapping[str, str]) -> bool:
        # A missing label matches as the empty string, like Prometheus/Loki matchers.
        actual = labels.get(self.name, "")
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        assert self._re is not None
        hit = self._re.match(actual) is not None
        return hit if self.op == "=~" else not hit

    def matches_empty(self) -> bool:
        return self.matches({})

    def __str__(self) -> str:
        escaped = self.value.replace("\\", "\\\\").replace('"', '\\"')
        return f'{self.name}{self.op}"{escaped}"'


@dataclass(frozen=True)
class Selector:
    matchers: tuple[Matcher, ...]

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(m.matches(labels) for m in self.matchers)

    def __str__(self) -> str:
        return "{" + ", ".join(str(m) for m in self.matchers) + "}"


def from_labels(labels: Mapping[str, str]) -> Selector:
    """An equality selector for exactly these label values (other labels unconstrained)."""
    return Selector(tuple(Matcher(k, "=", v) for k, v in sorted(labels.items())))


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def error(self, msg: str) -> SelectorError:
        return SelectorError(f"parse error at line 1, col {self.pos + 1}: {msg}")

    def skip_ws(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def peek(self, n: int = 1) -> str:
        return self.text[self.pos : self.pos + n]

    def expect(self, token: str) -> None:
        self.skip_ws()
        if self.peek(len(token)) != token:
            found = self.peek() or "end of query"
            raise self.error(f"syntax error: unexpected {found!r}, expecting {token!r}")
        self.pos += len(token)

    def name(self) -> str:
        self.skip_ws()
        m = _NAME.match(self.text, self.pos)
        if not m:
            found = self.peek() or "end of query"
            raise self.error(f"syntax error: unexpected {found!r}, expecting label name")
        self.pos = m.end()
        return m.group(0)

    def op(self) -> Op:
        self.skip_ws()
        for op in ("=~", "!~", "!=", "="):
            if self.peek(len(op)) == op:
                self.pos += len(op)
                return op
        raise self.error(f"syntax error: unexpected {self.peek() or 'end of query'!r}, expecting = != =~ !~")

    def string(self) -> str:
        self.skip_ws()
        quote = self.peek()
        if quote == "`":
            end = self.text.find("`", self.pos + 1)
            if end < 0:
                raise self.error("unterminated raw string")
            value = self.text[self.pos + 1 : end]
            self.pos = end + 1
            return value
        if quote != '"':
            raise self.error(f"syntax error: unexpected {quote or 'end of query'!r}, expecting string")
        self.pos += 1
        out: list[str] = []
        while self.pos < len(self.text):
            ch = self.text[self.pos]
            if ch == '"':
                self.pos += 1
                return "".join(out)
            if ch == "\\":
                nxt = self.peek(2)[1:]
                if nxt in _ESCAPES:
                    out.append(_ESCAPES[nxt])
                    self.pos += 2
                    continue
                raise self.error(f"invalid escape '\\{nxt}' in string")
            out.append(ch)
            self.pos += 1
        raise self.error("unterminated string")


def parse(text: str) -> Selector:
    """Parse a stream selector; anything beyond it (pipelines, metric queries) is a SelectorError."""
    p = _Parser(text)
    p.skip_ws()
    if p.peek() != "{":
        raise SelectorError(
            'only LogQL stream selectors like {app="x"} are supported by this test receiver, '
            f"got {text!r}"
        )
    p.pos += 1
    matchers: list[Matcher] = []
    p.skip_ws()
    if p.peek() != "}":
        while True:
            name = p.name()
            op = p.op()
            matchers.append(Matcher(name, op, p.string()))
            p.skip_ws()
            if p.peek() == ",":
                p.pos += 1
                continue
            break
    p.expect("}")
    p.skip_ws()
    if p.pos < len(p.text):
        raise SelectorError(
            "log pipelines and line filters are not supported by this test receiver "
            f"(only a stream selector): unexpected {p.text[p.pos:]!r}"
        )
    # Loki's rule: a selector must not match every stream.
    if not any(not m.matches_empty() for m in matchers):
        raise SelectorError(
            "queries require at least one regexp or equality matcher that does not have an "
            'empty-compatible value. For instance, app=~".*" does not meet this requirement, '
            'but app=~".+" will'
        )
    return Selector(tuple(matchers))
