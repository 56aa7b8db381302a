"""What a fuzz target is: a name, a pure one-input function and the seeds mutation starts from."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass


class Finding(AssertionError):
    """A decoder broke a rule without raising (a 541 close, output that is not whole frames, an
    encoding that does not read back): raised by ``one_input`` like any escaping exception."""


@dataclass(frozen=True, slots=True)
class Target:
    name: str
    one_input: Callable[[bytes], None]
    seeds: Callable[[], Sequence[bytes]]
    allowed: str  # the protocol's own errors, for the report and the docs
