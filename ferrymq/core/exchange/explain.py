"""Why a publish went where it went, in words, for the dashboard's routing explainer.

Which bindings matched is never decided here: ``explain`` runs ``routing.resolve`` with
``explain=True`` (the code every publish runs) and takes its trace as the truth. What this module
adds is only the prose: for each binding of each exchange the walk visited, a sentence saying why
it matched or did not (topic: which pattern words took which key words; headers: x-match and each
pair; direct: key equality; fanout: always). The publish hot path never comes here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ferrymq.core.exchange.binding import Binding
from ferrymq.core.exchange.headers import _PRESENT, comparable, header_rule
from ferrymq.core.exchange.kinds import DelayedExchange, Exchange
from ferrymq.core.exchange.routing import resolve
from ferrymq.core.exchange.trie import HASH, STAR, split_words


@dataclass(slots=True)
class Step:
    """One exchange the walk visited, with every one of its bindings judged."""

    exchange: str
    type: str
    bindings: list[dict[str, Any]] = field(default_factory=list)


@dataclass(slots=True)
class Explanation:
    steps: list[Step]
    queues: list[str]  # as resolve returns them (each once, first reached first)
    via_alternate: list[str]


def explain(
    start: Exchange, routing_key: str, headers: dict[str, Any] | None,
    lookup: Callable[[str], Exchange | None],
) -> Explanation:
    """Route as a publish would (nothing is enqueued) and say why each binding matched or not."""
    route = resolve(start, routing_key, headers, lookup, explain=True)
    matched = set(route.trace)
    order = [start.name]
    for b in route.trace:
        if b.destination_is_exchange and b.destination not in order:
            order.append(b.destination)
    order.extend(name for name in route.via_alternate if name not in order)
    steps = []
    for name in order:
        ex = start if name == start.name else lookup(name)
        if ex is not None:
            steps.append(Step(ex.name, ex.type, [
                _judged(ex, b, b in matched, routing_key, headers) for b in ex.bindings()]))
    return Explanation(steps, route.queues, route.via_alternate)


def _judged(ex: Exchange, b: Binding, matched: bool, routing_key: str,
            headers: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "destination": b.destination,
        "destination_type": "exchange" if b.destination_is_exchange else "queue",
        "routing_key": b.routing_key,
        "arguments": b.args(),
        "matched": matched,
        "why": why(ex, b, matched, routing_key, headers),
    }


def why(ex: Exchange, b: Binding, matched: bool, routing_key: str, headers: dict[str, Any] | None) -> str:
    kind = ex.inner.type if isinstance(ex, DelayedExchange) else ex.type
    if kind == "fanout":
        return "fanout: every binding matches, whatever the routing key"
    if kind == "topic":
        return topic_why(b.routing_key, routing_key, matched)
    if kind == "headers":
        return headers_why(b.arguments, headers, matched)
    if matched:
        return f"direct: routing key '{routing_key}' equals the binding key"
    return f"direct: routing key '{routing_key}' differs from binding key '{b.routing_key}'"


# --- topic ------------------------------------------------------------------------------------


def topic_why(pattern: str, routing_key: str, matched: bool) -> str:
    """Which pattern word took which key words (an alignment found for the words only)."""
    pwords, kwords = split_words(pattern), split_words(routing_key)
    if not matched:
        return f"topic: pattern '{pattern}' does not fit key '{routing_key}': " + _misfit(pwords, kwords)
    pairs = _align(pwords, kwords) or []
    parts = []
    for p, taken in pairs:
        text = ".".join(taken)
        if p == HASH:
            parts.append(f"'#' took {len(taken)} word(s)" + (f" '{text}'" if taken else ""))
        elif p == STAR:
            parts.append(f"'*' took '{text}'")
        else:
            parts.append(f"'{p}' equals '{text}'")
    return f"topic: pattern '{pattern}' matches key '{routing_key}': " + ", ".join(parts or ["both empty"])


def _misfit(pwords: list[str], kwords: list[str]) -> str:
    fixed = sum(1 for w in pwords if w != HASH)
    if HASH not in pwords and fixed != len(kwords):
        return f"the pattern has {fixed} word(s), the key {len(kwords)}"
    if HASH in pwords and fixed > len(kwords):
        return f"the pattern needs at least {fixed} word(s), the key has {len(kwords)}"
    if HASH not in pwords:
        for i, (p, k) in enumerate(zip(pwords, kwords, strict=True)):
            if p != STAR and p != k:
                return f"word {i + 1} is '{k}' where the pattern wants '{p}'"
    return "no placement of '#' lines the pattern's literal words up with the key's"


def _align(pwords: list[str], kwords: list[str]) -> list[tuple[str, list[str]]] | None:
    """One way the pattern's words cover the key's words, memoised over (i, j) so it stays
    polynomial for patterns like '#.#.#'. Only for the text: resolve already decided the match."""
    failed: set[tuple[int, int]] = set()

    def go(i: int, j: int) -> list[tuple[str, list[str]]] | None:
        if i == len(pwords):
            return [] if j == len(kwords) else None
        if (i, j) in failed:
            return None
        p = pwords[i]
        spans = range(len(kwords) - j + 1) if p == HASH else (1,)
        for n in spans:
            if j + n > len(kwords) or (p not in (HASH, STAR) and kwords[j] != p):
                continue
            rest = go(i + 1, j + n)
            if rest is not None:
                return [(p, kwords[j:j + n]), *rest]
        failed.add((i, j))
        return None

    return go(0, 0)


# --- headers ----------------------------------------------------------------------------------


def headers_why(arguments: tuple[tuple[str, Any], ...], headers: dict[str, Any] | None,
                matched: bool) -> str:
    rule = header_rule(arguments)
    mode = dict(arguments).get("x-match", "all")
    data = {k: comparable(v) for k, v in (headers or {}).items()}
    parts = []
    for key, wanted in rule.wanted:
        shown = "present" if wanted is _PRESENT else _show(dict(arguments)[key])
        if key not in data:
            parts.append(f"{key}={shown} missing")
        elif wanted is _PRESENT or data[key] == wanted:
            parts.append(f"{key}={shown} matched")
        else:
            parts.append(f"{key}={shown} differs (message has {_show((headers or {})[key])})")
    need = "one pair must match" if rule.any_mode else "every pair must match"
    verdict = "matched" if matched else "no match"
    return f"headers: x-match {mode} ({need}): " + "; ".join(parts or ["no pairs"]) + f" -> {verdict}"


def _show(value: Any) -> str:
    if isinstance(value, bytes | bytearray):
        return repr(bytes(value).decode("utf-8", "replace"))
    return repr(value)
