"""Fuzz targets for every decoder that reads bytes from a client, and the engine that soaks them.

Each target is a pure ``one_input(data: bytes) -> None`` (atheris' shape, so the same function runs
under atheris, a hypothesis test or this package's own mutation loop) with a seed corpus built by
the project's own encoders. The one rule, h11's: only the protocol's own errors may escape a
decoder; anything else escaping ``one_input`` is a finding (``python -m ferrymq.fuzz --help``).
"""

from ferrymq.fuzz.target import Finding, Target

__all__ = ["Finding", "Target"]
