"""Topic matching as RabbitMQ does it: a trie over dot-separated words.

Words are split on "."; ``*`` matches exactly one word and ``#`` zero or more. Empty words count
("a..b" has three words, "a." two), but the empty key "" has *no* words, as in RabbitMQ 3.10: so
"#" and "" match it while "*" does not. Literal "*" and "#" in a routing key are plain words.

Matching walks the trie once per key over (node, position) states. A ``#`` node loops on itself
("swallow one more word"), so each state has O(1) successors and, with the states memoised, a
match costs O(trie nodes x key words) even for patterns like "#.#.#" that a naive backtracking
matcher (or a regex per binding) would make exponential.
"""

from __future__ import annotations

from collections.abc import Hashable

STAR = "*"
HASH = "#"


def split_words(key: str) -> list[str]:
    """RabbitMQ's split: "" is zero words, otherwise every "." separates (empty words kept)."""
    return key.split(".") if key else []


class _Node:
    __slots__ = ("children", "destinations", "is_hash")

    def __init__(self, is_hash: bool) -> None:
        self.children: dict[str, _Node] = {}
        self.destinations: set[Hashable] = set()
        self.is_hash = is_hash  # reached by a '#' edge: may swallow further words in place


class TopicTrie:
    """Bindings keyed by pattern words; ``match`` returns every destination whose pattern fits."""

    __slots__ = ("_count", "_root")

    def __init__(self) -> None:
        self._root = _Node(False)
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def add(self, pattern: str, destination: Hashable) -> bool:
        """Bind ``destination`` under ``pattern``; False when that pair is already there."""
        node = self._root
        for word in split_words(pattern):
            child = node.children.get(word)
            if child is None:
                child = node.children[word] = _Node(word == HASH)
            node = child
        if destination in node.destinations:
            return False
        node.destinations.add(destination)
        self._count += 1
        return True

    def remove(self, pattern: str, destination: Hashable) -> bool:
        """Unbind one pair, pruning nodes left empty so the trie only holds live patterns."""
        words = split_words(pattern)
        path = [self._root]
        for word in words:
            child = path[-1].children.get(word)
            if child is None:
                return False
            path.append(child)
        if destination not in path[-1].destinations:
            return False
        path[-1].destinations.discard(destination)
        self._count -= 1
        for i in range(len(words) - 1, -1, -1):
            node = path[i + 1]
            if node.children or node.destinations:
                break
            del path[i].children[words[i]]
        return True

    def match(self, routing_key: str) -> set[Hashable]:
        """Destinations of every pattern matching ``routing_key``, each once."""
        words = split_words(routing_key)
        n = len(words)
        found: set[Hashable] = set()
        seen: set[tuple[_Node, int]] = set()
        stack: list[tuple[_Node, int]] = [(self._root, 0)]
        while stack:
            state = stack.pop()
            if state in seen:
                continue
            seen.add(state)
            node, i = state
            children = node.children
            if node.is_hash and i < n:
                stack.append((node, i + 1))  # '#' swallows one more word
            hash_child = children.get(HASH)
            if hash_child is not None:
                stack.append((hash_child, i))  # '#' starts by swallowing none
            if i == n:
                found.update(node.destinations)
                continue
            for word in (words[i], STAR):
                child = children.get(word)
                if child is not None:
                    stack.append((child, i + 1))
        return found
