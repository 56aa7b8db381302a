"""The transaction coordinator's state machine and the per-partition transaction index (pure):
epochs and fencing, the request order Kafka requires, offsets held until commit, timeouts on the
caller's clock, and the last stable offset with the aborted ranges."""

from __future__ import annotations

import itertools

from ferrymq.core import txns
from ferrymq.core.txns import PartitionTxns, TxnCoordinator, restore
from ferrymq.kafka_codes import (
    INVALID_PRODUCER_EPOCH,
    INVALID_PRODUCER_ID_MAPPING,
    INVALID_TRANSACTION_TIMEOUT,
    INVALID_TXN_STATE,
    NONE,
)


def _coordinator() -> TxnCoordinator:
    return TxnCoordinator(itertools.count(1000).__next__)


def _ongoing(c: TxnCoordinator, txn_id: str = "t", now: int = 0) -> tuple[int, int]:
    code, txn, _ = c.init_producer(txn_id, 60_000)
    assert code == NONE and txn is not None
    assert c.add_partitions(txn_id, txn.producer_id, txn.epoch, [("out", 0), ("out", 1)], now) == NONE
    return txn.producer_id, txn.epoch


def test_first_init_gives_a_new_producer_id_at_epoch_zero_and_reinit_bumps_the_epoch():
    c = _coordinator()
    _, first, _ = c.init_producer("t", 60_000)
    assert first is not None and (first.producer_id, first.epoch) == (1000, 0)
    code, again, ending = c.init_producer("t", 60_000)
    assert code == NONE and again is not None and ending is None
    assert (again.producer_id, again.epoch) == (1000, 1)


def test_a_timeout_outside_kafkas_bounds_is_refused():
    c = _coordinator()
    assert c.init_producer("t", 0)[0] == INVALID_TRANSACTION_TIMEOUT
    assert c.init_producer("t", txns.MAX_TIMEOUT_MS + 1)[0] == INVALID_TRANSACTION_TIMEOUT


def test_reinit_aborts_the_old_epochs_open_transaction_and_fences_its_requests():
    c = _coordinator()
    pid, epoch = _ongoing(c)
    _, txn, ending = c.init_producer("t", 60_000)
    assert ending is not None and not ending.commit and ending.partitions == [("out", 0), ("out", 1)]
    c.completed(ending)
    assert txn is not None and txn.epoch == epoch + 1
    assert c.add_partitions("t", pid, epoch, [("out", 0)], 0) == INVALID_PRODUCER_EPOCH
    assert c.end("t", pid, epoch, True) == (INVALID_PRODUCER_EPOCH, None)
    assert c.check_produce(pid, epoch, ("out", 0)) == INVALID_PRODUCER_EPOCH


def test_commit_carries_the_held_offsets_and_abort_drops_them():
    c = _coordinator()
    pid, epoch = _ongoing(c)
    assert c.add_offsets("t", pid, epoch, "g", 0) == NONE
    assert c.txn_offset_commit("t", pid, epoch, "g", [("in", 0, 5, "")]) == NONE
    code, ending = c.end("t", pid, epoch, False)
    assert code == NONE and ending is not None and ending.offsets == {}
    c.completed(ending)
    assert c.add_offsets("t", pid, epoch, "g", 0) == NONE
    assert c.txn_offset_commit("t", pid, epoch, "g", [("in", 0, 8, "m")]) == NONE
    code, ending = c.end("t", pid, epoch, True)
    assert ending is not None and ending.commit and ending.offsets == {"g": {("in", 0): (8, "m")}}


def test_end_retried_after_completion_answers_none_and_the_opposite_end_is_invalid():
    c = _coordinator()
    pid, epoch = _ongoing(c)
    _, ending = c.end("t", pid, epoch, True)
    assert ending is not None
    c.completed(ending)
    assert c.end("t", pid, epoch, True) == (NONE, None)
    assert c.end("t", pid, epoch, False) == (INVALID_TXN_STATE, None)


def test_requests_of_an_unknown_id_or_producer_are_refused():
    c = _coordinator()
    pid, epoch = _ongoing(c)
    assert c.add_partitions("other", pid, epoch, [("x", 0)], 0) == INVALID_PRODUCER_ID_MAPPING
    assert c.end("t", pid + 1, epoch, True)[0] == INVALID_PRODUCER_ID_MAPPING
    assert c.check_produce(pid + 1, 0, ("out", 0)) == INVALID_PRODUCER_ID_MAPPING


def test_produce_needs_the_partition_added_to_an_open_transaction():
    c = _coordinator()
    pid, epoch = _ongoing(c)
    assert c.check_produce(pid, epoch, ("out", 0)) == NONE
    assert c.check_produce(pid, epoch, ("out", 7)) == INVALID_TXN_STATE
    _, ending = c.end("t", pid, epoch, True)
    assert ending is not None
    c.completed(ending)
    assert c.check_produce(pid, epoch, ("out", 0)) == INVALID_TXN_STATE


def test_an_open_transaction_past_its_timeout_is_aborted_and_its_producer_fenced():
    c = _coordinator()
    pid, epoch = _ongoing(c, now=1_000)
    assert c.next_deadline_ms() == 61_000
    assert c.expire(60_999) == []
    [ending] = c.expire(61_000)
    assert not ending.commit and ending.epoch == epoch + 1
    c.completed(ending)
    assert c.next_deadline_ms() is None
    assert c.end("t", pid, epoch, True)[0] == INVALID_PRODUCER_EPOCH


def test_the_last_epoch_moves_the_producer_to_a_new_id():
    c = _coordinator()
    _, txn, _ = c.init_producer("t", 60_000)
    assert txn is not None
    txn.epoch = txns.EPOCH_MAX - 1
    _, again, _ = c.init_producer("t", 60_000)
    assert again is not None and (again.producer_id, again.epoch) == (1001, 0)
    assert c.check_produce(1000, txns.EPOCH_MAX - 1, ("out", 0)) == INVALID_PRODUCER_ID_MAPPING


def test_a_stored_state_restores_and_a_prepared_commit_is_finished_on_load():
    c = _coordinator()
    pid, epoch = _ongoing(c)
    c.txn_offset_commit("t", pid, epoch, "g", [("in", 0, 3, "")])
    c.end("t", pid, epoch, True)  # prepared, never completed: the broker stopped here
    snap = c.txns["t"].snapshot()
    fresh = _coordinator()
    ending = fresh.load(restore("t", snap), now_ms=0)
    assert ending is not None and ending.commit and ending.partitions == [("out", 0), ("out", 1)]
    assert ending.offsets == {"g": {("in", 0): (3, "")}}


def test_an_ongoing_state_restored_starts_its_timeout_again():
    c = _coordinator()
    _ongoing(c)
    fresh = _coordinator()
    assert fresh.load(restore("t", c.txns["t"].snapshot()), now_ms=500) is None
    assert fresh.next_deadline_ms() == 60_500


def test_stable_offset_is_the_first_offset_of_the_earliest_open_transaction():
    idx = PartitionTxns()
    assert idx.stable_offset(10) == 10
    idx.note_batch(7, 10)
    idx.note_batch(7, 12)
    idx.note_batch(8, 11)
    assert idx.stable_offset(20) == 10
    idx.note_marker(7, True, 20)
    assert idx.stable_offset(21) == 11
    idx.note_marker(8, False, 21)
    assert idx.stable_offset(22) == 22


def test_aborted_between_lists_aborts_whose_records_may_lie_in_the_range():
    idx = PartitionTxns()
    idx.note_batch(1, 0)
    idx.note_marker(1, False, 5)
    idx.note_batch(2, 6)
    idx.note_marker(2, True, 8)
    idx.note_batch(3, 9)
    idx.note_marker(3, False, 12)
    assert idx.aborted_between(0, 13) == [(1, 0), (3, 9)]
    assert idx.aborted_between(6, 13) == [(3, 9)]
    assert idx.aborted_between(0, 5) == [(1, 0)]
    idx.note_marker(4, False, 13)  # a marker with no open transaction (a retry) records nothing
    assert idx.aborted_between(13, 14) == []
    idx.forget_before(6)  # retention took offsets 0..5
    assert idx.aborted == [(12, 3, 9)]


def _txn_batch(pid: int, base: int, n: int = 2) -> bytearray:
    from ferrymq.protocols.kafka.batch import ATTR_TRANSACTIONAL
    from ferrymq.protocols.kafka.records import encode_batch
    return bytearray(encode_batch([(None, b"v", ())] * n, 0, base, pid, 0, 0, attributes=ATTR_TRANSACTIONAL))


def test_markers_are_control_batches_whose_record_says_commit_or_abort():
    from ferrymq.protocols.kafka.batch import ATTR_CONTROL, ATTR_TRANSACTIONAL, header, validate
    from ferrymq.protocols.kafka.transactions import control_batch, is_commit_marker

    for commit in (True, False):
        data = control_batch(42, 3, commit, 100, 1)
        [info] = validate(data, len(data))  # a sound batch: its CRC holds
        assert info.attributes == ATTR_CONTROL | ATTR_TRANSACTIONAL and info.count == 1
        assert header(data)[9:11] == (42, 3)
        assert is_commit_marker(bytes(data)) is commit


def test_batches_below_cuts_at_the_first_batch_at_or_past_the_offset():
    from ferrymq.protocols.kafka.batch import batches_below

    first, second = _txn_batch(1, 0), _txn_batch(1, 2)
    data = bytes(first + second)
    assert batches_below(data, 2) == bytes(first)
    assert batches_below(data, 3) == data
    assert batches_below(data, 0) == b""


def test_the_index_is_rebuilt_from_a_partitions_batch_headers_and_markers(tmp_path):
    from ferrymq.protocols.kafka.transactions import append_batch, control_batch, rebuild_index
    from ferrymq.storage.stream_log import StreamLog

    lg = StreamLog(tmp_path / "p0")
    try:
        append_batch(lg, _txn_batch(1, 0))
        append_batch(lg, _txn_batch(2, 2))
        append_batch(lg, control_batch(1, 0, False, 4, 0))
        append_batch(lg, _txn_batch(3, 5))
        idx = PartitionTxns()
        rebuild_index(lg, idx)
    finally:
        lg.close()
    assert idx.open == {2: 2, 3: 5}
    assert idx.aborted == [(4, 1, 0)]
    assert idx.stable_offset(7) == 2


def test_record_readers_skip_markers_unless_asked_for_them():
    from ferrymq.protocols.kafka.records import decode_batches
    from ferrymq.protocols.kafka.transactions import control_batch

    data = bytes(_txn_batch(1, 0, n=1) + control_batch(1, 0, True, 1, 0))
    assert [r[0] for r in decode_batches(data)] == [0]
    assert [r[0] for r in decode_batches(data, control=True)] == [0, 1]


def test_an_unstored_coordinator_answer_turns_every_error_code_into_a_retriable_one():
    from ferrymq.kafka_codes import COORDINATOR_NOT_AVAILABLE
    from ferrymq.server.kafka.transactions import _failed

    values = {"throttle_time": 0, "topics": [{"name": "t", "partitions": [{"partition_index": 0,
                                                                           "error_code": 0}]}]}
    assert _failed(values)["topics"][0]["partitions"][0] == {"partition_index": 0,
                                                             "error_code": COORDINATOR_NOT_AVAILABLE}
    assert _failed({"error_code": 0, "producer_id": 5}) == {"error_code": COORDINATOR_NOT_AVAILABLE,
                                                            "producer_id": 5}


def test_the_cleaner_keeps_transactional_batches_whole_and_out_of_its_offset_map():
    from ferrymq.protocols.kafka import compaction
    from ferrymq.protocols.kafka.records import encode_batch
    from ferrymq.protocols.kafka.transactions import control_batch

    for batch in (bytes(control_batch(1, 0, False, 9, 0)), bytes(_txn_batch(1, 0))):
        assert compaction.keys(batch) == []
        assert compaction.filter_batch(batch, lambda *_: False) == batch
    plain = encode_batch([(b"k", b"v", ())], 0)
    assert compaction.keys(plain) == [(0, b"k")]


def test_the_transaction_log_is_rewritten_as_a_snapshot_and_loads_the_same(tmp_path, monkeypatch):
    from ferrymq.protocols.kafka import transactions
    from ferrymq.storage.stream_log import StreamLog

    monkeypatch.setattr(transactions, "COMPACT_AFTER", 20)
    c = _coordinator()
    lg = StreamLog(tmp_path / "txns", segment_bytes=4096)
    log = transactions.TxnLog(lg, lambda: 0)
    compacted = False
    for n in range(30):
        txn_id = f"t{n % 3}"
        if txn_id in c.txns:
            _, ending = c.end(txn_id, c.txns[txn_id].producer_id, c.txns[txn_id].epoch, True)
            assert ending is not None
            c.completed(ending)
        _ongoing(c, txn_id)
        log.append([c.txns[txn_id]])
        compacted |= log.compact_if_due(c.txns.values())
    assert compacted and lg.next_offset - lg.start_offset < 30
    lg.close()
    again = transactions.TxnLog(StreamLog(tmp_path / "txns", segment_bytes=4096), lambda: 0)
    try:
        latest, touched = again.load()
    finally:
        again.close()
    assert {k: v.snapshot() for k, v in latest.items()} == {k: v.snapshot() for k, v in c.txns.items()}
    assert touched == {("out", 0), ("out", 1)}
