"""The AWS query protocol's requests: a form (``Action=...&Version=...``) whose dotted names flatten
lists and maps (``Attribute.1.Name``, ``Tags.member.2.Key``). ``nest`` rebuilds the tree; each
service then maps its tree onto the JSON protocol's parameter names, so the actions see one shape.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from ferrymq.protocols.aws.errors import AwsError

MAX_PARAMETERS = 10_000  # a form with more fields than any real request is refused, not parsed


def parse_form(body: bytes | str) -> dict[str, str]:
    """The form's fields (the last value wins for a repeated name, as AWS takes it)."""
    try:
        text = body.decode("utf-8", "strict") if isinstance(body, bytes) else body
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=False,
                          max_num_fields=MAX_PARAMETERS)
    except ValueError as exc:  # UnicodeDecodeError too: a form is UTF-8 text
        raise AwsError("MalformedQueryString", f"The query string is malformed: {exc}") from None
    return dict(pairs)


def nest(flat: dict[str, str]) -> dict[str, Any]:
    """``{"A.1.B": "x", "A.2.B": "y", "C": "z"}`` -> ``{"A": [{"B": "x"}, {"B": "y"}], "C": "z"}``.
    Numbered parts become lists in index order (gaps are closed, as AWS reads them)."""
    tree: dict[str, Any] = {}
    for key, value in flat.items():
        node: dict[str, Any] = tree
        parts = key.split(".")
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        if isinstance(node.get(parts[-1]), dict):
            continue  # "A=x" beside "A.1=y": the structured one wins
        node[parts[-1]] = value
    return {k: _lists(v) for k, v in tree.items()}  # the top is the request: names, never a list


def _lists(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    if node and all(k.isdigit() for k in node):
        return [_lists(node[k]) for k in sorted(node, key=int)]
    return {k: _lists(v) for k, v in node.items()}


def as_list(value: Any) -> list[Any]:
    """A nested value that should be a list (one numbered entry, a bare value, or absent)."""
    if value is None:
        return []
    if isinstance(value, list):
        return value
    if isinstance(value, dict) and "member" in value:
        return as_list(value["member"])
    return [value]


def as_map(entries: Any, key: str = "Name", value: str = "Value") -> dict[str, Any]:
    """A flattened map (``Attribute.N.Name`` / ``Attribute.N.Value``) as a dict."""
    out: dict[str, Any] = {}
    for entry in as_list(entries.get("entry") if isinstance(entries, dict) and "entry" in entries
                         else entries):
        if isinstance(entry, dict) and key in entry:
            out[str(entry[key])] = entry.get(value)
    return out
