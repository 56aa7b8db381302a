"""RabbitMQ's list parameters, applied to any list of JSON objects.

``name`` + ``use_regex`` filter by name (on paged lists only, as RabbitMQ 3.10 does), ``sort`` (a
dotted field path) + ``sort_reverse`` order, ``columns`` (comma-separated dotted paths) cut each
object down, and ``page`` + ``page_size`` turn
the answer into RabbitMQ's page object (``items``, ``page``, ``page_count``, ``filtered_count``,
``item_count``, ``page_size``, ``total_count``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ferrymq import limits
from ferrymq.http.responses import bad_request, error

Item = dict[str, Any]


def dig(item: Mapping[str, Any], path: str) -> Any:
    value: Any = item
    for part in path.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


def _sort_key(value: Any) -> tuple[int, Any]:
    """Missing values first, then numbers, then text (RabbitMQ sorts mixed values stably too)."""
    if value is None:
        return (0, 0)
    if isinstance(value, bool | int | float):
        return (1, value)
    return (2, str(value))


def _columns(items: list[Item], columns: str) -> list[Item]:
    paths = [c for c in columns.split(",") if c]
    out: list[Item] = []
    for item in items:
        cut: Item = {}
        for path in paths:
            value, parts = dig(item, path), path.split(".")
            node = cut
            for part in parts[:-1]:
                node = node.setdefault(part, {})
            node[parts[-1]] = value
        out.append(cut)
    return out


def _name_filter(items: list[Item], name: str, use_regex: bool) -> list[Item]:
    if use_regex:
        try:
            pattern = re.compile(name)
        except re.error as exc:
            raise bad_request(f"invalid regex {name!r}: {exc}") from None
        return [i for i in items if pattern.search(str(i.get("name", "")))]
    return [i for i in items if name in str(i.get("name", ""))]


def _page_params(query: Mapping[str, str]) -> tuple[int, int]:
    """page and page_size, refused with RabbitMQ's own errors and texts."""
    try:
        page = int(query["page"])
        size = int(query.get("page_size", 100))
    except ValueError:
        raise bad_request("Pagination parameters are invalid") from None
    if page < 1 or size < 1 or size > limits.HTTP_PAGE_SIZE_MAX:
        shown = query.get("page_size", "undefined") if page < 1 else size
        raise error(400, "invalid_pagination_parameters",
                    f"Invalid pagination parameters: page number {page}, page size {shown}")
    return page, size


def apply(items: list[Item], query: Mapping[str, str]) -> list[Item] | Item:
    """The list as RabbitMQ would answer it for these query parameters."""
    total = len(items)
    if query.get("name") and "page" in query:  # RabbitMQ 3.10 ignores ``name`` on unpaged lists
        items = _name_filter(items, query["name"], query.get("use_regex", "false") == "true")
    if query.get("sort"):
        items = sorted(items, key=lambda i: _sort_key(dig(i, query["sort"])),
                       reverse=query.get("sort_reverse", "false") == "true")
    if query.get("columns"):
        items = _columns(items, query["columns"])
    if "page" not in query:
        return items
    page, size = _page_params(query)
    filtered = len(items)
    page_count = max(1, -(-filtered // size))
    if page > page_count:
        raise error(400, "page_out_of_range",
                    f"Page out of range, page: {page} page size: {size}, len: {filtered}")
    return {"filtered_count": filtered, "item_count": len(items[(page - 1) * size:page * size]),
            "items": items[(page - 1) * size:page * size], "page": page, "page_count": page_count,
            "page_size": size, "total_count": total}
