"""The idempotent consumer's store: an id is applied once, and still known after the process that
applied it is gone (the store reopened from its file, as a restarted worker does)."""

from __future__ import annotations

from pathlib import Path

from ferrymq.lab.effects import EffectStore, read_ids


def test_an_id_is_applied_once_and_remembered_across_a_reopen(tmp_path: Path) -> None:
    path = tmp_path / "done.sqlite"
    store = EffectStore(path)
    assert [store.apply(i) for i in (1, 2, 1)] == [True, True, False]
    del store  # dropped without close(): each apply was its own committed transaction
    again = EffectStore(path)
    assert again.apply(2) is False and again.apply(3) is True
    again.close()
    assert read_ids(path) == {1, 2, 3}


def test_a_store_that_was_never_written_holds_no_ids(tmp_path: Path) -> None:
    assert read_ids(tmp_path / "absent.sqlite") == set()
