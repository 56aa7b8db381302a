"""Deterministic simulation: the real core and codecs over a seeded network, clock and faulty store.

One seed fixes everything: the client operations, how bytes are cut and delayed on the simulated
network, when the node turns, commits and loses power, and what a power cut tears. A failing run
prints the one command that replays it (``ferrymq sim --seed N --steps M``) and its last trace lines.

Layout: ``network`` (byte pipes), ``commit`` (the node's commit pipeline without asyncio: a shell
over the server's own bookkeeping, ferrymq.storage.turns), ``topology`` (durable topology, faulty
queue logs, and the TopicStore whose partitions are faulty stream logs), ``amqp_node`` /
``amqp_client`` (the two ends of an AMQP connection, both through the project's codecs; the node runs
the server's AMQP method table and effects drain), ``kafka_wire`` (the Kafka front end on the
server's produce and fetch paths, and the sim's client codec), ``amqp_world`` and
``kafka_world`` (one module per protocol model, behind ``world.World``), ``oracle`` (the AMQP
invariants), ``runner`` (seeds, steps, traces, the replay line) and ``cli``.
"""

from ferrymq.sim.runner import SimFailure, SimResult, run_seed, run_seeds

__all__ = ["SimFailure", "SimResult", "run_seed", "run_seeds"]
