"""Topic matching as RabbitMQ does it: a trie over dot-separated words.

``*`` matches exactly one word, ``#`` zero or more; words may be empty ("a..b" has three words,
"" is one empty word). Matching walks the trie once per key, with (node, position) pairs
memoised so patterns like "#.#.#" stay linear instead of exploding.
"""

from __future__ import annotations

from collections.abc import Hashable


class _Node:
    __slots__ = ("children", "destinations")

    def __init__(self) -> None:
        self.children: dict[str, _Node] = {}
        self.destinations: set[Hashable] = set()


class TopicTrie:
    def __init__(self) -> None:
        self._root = _Node()
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def add(self, pattern: str, destination: Hashable) -> bool:
        node = self._root
        for word in pattern.split("."):
            node = node.children.setdefault(word, _Node())
        if destination in node.destinations:
            return False
        node.destinations.add(destination)
        self._count += 1
        return True

    def remove(self, pattern: str, destination: Hashable) -> bool:
        path = [self._root]
        for word in pattern.split("."):
            child = path[-1].children.get(word)
            if child is None:
                return False
            path.append(child)
        if destination not in path[-1].destinations:
            return False
        path[-1].destinations.discard(destination)
        self._count -= 1
        self._prune(pattern.split("."), path)
        return True

    @staticmethod
    def _prune(words: list[str], path: list[_Node]) -> None:
        for i in range(len(words) - 1, -1, -1):
            node = path[i + 1]
            if node.children or node.destinations:
                return
            del path[i].children[words[i]]

    def match(self, routing_key: str) -> set[Hashable]:
        words = routing_key.split(".")
        found: set[Hashable] = set()
        seen: set[tuple[int, int]] = set()
        stack = [(self._root, 0)]
        n = len(words)
        while stack:
            node, i = stack.pop()
            key = (id(node), i)
            if key in seen:
                continue
            seen.add(key)
            hash_node = node.children.get("#")
            if hash_node is not None:
                # '#' consumes zero or more words: try every remaining split point.
                stack.extend((hash_node, j) for j in range(i, n + 1))
            if i == n:
                found |= node.destinations
                continue
            for word in (words[i], "*"):
                child = node.children.get(word)
                if child is not None:
                    stack.append((child, i + 1))
        return found
