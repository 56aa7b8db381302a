"""Deterministic simulation: the real core and codecs over a seeded network, clock and faulty store.

One seed fixes everything: the client operations, how bytes are cut and delayed on the simulated
network, when the node turns, commits and loses power, and what a power cut tears. A failing run
prints the one command that replays it (``ferrymq sim --seed N --steps M``) and its last trace lines.

Layout: ``network`` (byte pipes), ``commit`` (the node's turn and group-commit pipeline without
asyncio), ``topology`` (durable topology + faulty queue logs), ``amqp_node`` / ``amqp_client`` (the
two ends of an AMQP connection, both through the project's codecs), ``amqp_world`` and
``kafka_world`` (one module per protocol model, behind ``world.World``), ``oracle`` (the AMQP
invariants), ``runner`` (seeds, steps, traces, the replay line) and ``cli``.
"""

from ferrymq.sim.runner import SimFailure, SimResult, run_seed, run_seeds

__all__ = ["SimFailure", "SimResult", "run_seed", "run_seeds"]
