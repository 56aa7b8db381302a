"""All of FerryMQ's file I/O: one log engine under queues and streams.

Read it bottom up, one idea per module:

- ``records``   queue-log record framing: length, CRC32C, type, payload.
- ``formats``   the pluggable part: how a frame is laid out, per record kind (QUEUE_RECORDS,
                KAFKA_BATCHES: RecordBatch v2 as received, base offset in place).
- ``segment``   the one segment file: header (magic, version, kind, flags, base), sparse index with
                a time column, recovery that re-validates and truncates a torn tail, one pwrite per
                append. ``StreamSegment`` is the same class reading the batch format.
- ``log``       the one log over a directory of segments: roll, recovery across segments, deletes
                from the front, fsync of dirty segments and new directory entries. ``Log`` carries
                queue-log records; ``stream_log.StreamLog`` carries Kafka batches, with retention
                and the swap-in of compacted segments as stream policy on top.
- ``queue_log`` a durable queue's QueueStore (publish, settle, requeue... as records) over a Log.
- ``stream_compact``, ``stream_store``  key compaction of a partition; where topics live on disk.
- ``commit``    the fsync policy and group commit: the only fsync system calls.
- ``memory``, ``faulty``  the same contracts in memory, and on disk with simulated power loss;
                one contract suite (tests/unit/test_storage_contract.py) runs over all of them.
- ``metadata``, ``data_dir``  topology in SQLite; the data directory and its lock.

One CRC32C implementation (the ``crc32c`` package, which checks memoryviews without a copy). No
module here reads the wall clock or ``random``: time comes from an injected Clock, randomness from
the caller.
"""
