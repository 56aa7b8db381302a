"""Scenario 9, retention and compaction, short form on FerryMQ's Kafka listener (aiokafka): what a
late reader finds in a compacted topic and in topics with a time and a size limit, against what the
writer had acknowledged."""

from __future__ import annotations

from pathlib import Path

from tests.support.lab import by_variant, run_short


def test_retention_and_compaction_keep_what_kafka_promises(tmp_path: Path) -> None:
    run = run_short("retention", ["ferrymq-kafka"], tmp_path, retention_ms=1000, segment_ms=200)
    series = by_variant(run)
    for s in series.values():
        assert s["books"]["confirmed"] > 0 and s["books"]["lost"] == 0  # the tail reader saw every record
    c = series["compact"]["figures"]
    # compaction: every key's latest record survives at the offset it was written at, some older ones
    # went, and the offsets in between are gone (the last kept offset is still the last written)
    assert c["latest_per_key_kept"] == c["distinct_keys_written"] == c["distinct_keys_kept"]
    assert c["records_kept"] < c["records_written"]
    assert c["offsets_missing_in_between_kept"] > 0 and c["last_offset_kept"] == c["end_offset"] - 1
    assert c["tombstones_kept"] <= c["tombstones_written"]
    for variant in ("retention.ms", "retention.bytes"):
        f = series[variant]["figures"]
        # retention: whole segments from the front; what is left is contiguous up to the end
        assert 0 < f["log_start_offset"] < f["end_offset"], variant
        assert f["first_offset_kept"] == f["log_start_offset"] and f["offsets_missing_in_between_kept"] == 0
        assert f["records_kept"] == f["end_offset"] - f["log_start_offset"], variant
        # what was deleted shows in the log start (above); the sampled peak may already be after a deletion
        assert f["bytes_on_disk_after"] <= f["bytes_on_disk_peak"], variant
        starts = [v for v in series[variant]["timeline"]["gauges"]["log_start_offset"] if v is not None]
        assert starts == sorted(starts) and starts[-1] > starts[0], variant  # the start only moves forward
    text = " ".join(run["explanation"])
    assert (f"the latest record of {c['latest_per_key_kept']:,} of {c['distinct_keys_written']:,} keys"
            in text)
    f = series["retention.ms"]["figures"]
    assert f"the log start offset moved to {f['log_start_offset']:,}" in text
