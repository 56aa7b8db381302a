"""The ferrymq.fuzz targets inside `make test`: a bounded hypothesis run per target (the soak is
`make fuzz`), every saved regression input replayed, and the engine shown to find, save and replay a
planted bug. A case still open lives under regressions/<target>/open/ and is replayed in a child
process as a strict xfail, so a native crash cannot take the suite down and a fix is noticed.

FERRYMQ_FUZZ_EXAMPLES raises the bound.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ferrymq.fuzz.mutate import INPUT_MAX_BYTES, mutate
from ferrymq.fuzz.runner import crashed_input, run
from ferrymq.fuzz.target import Target
from ferrymq.fuzz.targets import TARGETS

EXAMPLES = int(os.environ.get("FERRYMQ_FUZZ_EXAMPLES", "120"))
REGRESSIONS = Path(__file__).parent / "regressions"
FIXED = sorted(p for p in REGRESSIONS.glob("*/*.bin"))
OPEN = sorted(p for p in REGRESSIONS.glob("*/open/*.bin"))


def _target_of(case: Path) -> str:
    return case.parent.parent.name if case.parent.name == "open" else case.parent.name


def test_there_are_at_least_eight_targets_and_each_has_seeds_that_pass() -> None:
    assert len(TARGETS) >= 8
    for target in TARGETS.values():
        seeds = target.seeds()
        assert seeds, target.name
        for seed in seeds:
            target.one_input(seed)


def _inputs(target: Target) -> st.SearchStrategy[bytes]:
    seeds = list(target.seeds())
    mutated = st.integers(0, 2**32).map(lambda n: mutate(random.Random(n), seeds))
    return st.one_of(mutated, mutated, st.binary(max_size=200), st.sampled_from(seeds))


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_only_the_protocols_own_errors_escape(name: str) -> None:
    target = TARGETS[name]
    examples = EXAMPLES // 3 if name == "amqp-frames" else EXAMPLES  # a whole connection per input

    @settings(max_examples=examples, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(_inputs(target))
    def check(data: bytes) -> None:
        target.one_input(data)

    check()


@pytest.mark.parametrize("case", FIXED, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_a_saved_finding_stays_fixed(case: Path) -> None:
    TARGETS[_target_of(case)].one_input(case.read_bytes())


@pytest.mark.xfail(strict=True, reason="a known open finding: see its file name and the report")
@pytest.mark.parametrize("case", OPEN, ids=lambda p: f"{_target_of(p)}/{p.name}")
def test_an_open_finding_is_replayed_in_a_child(case: Path) -> None:
    code = subprocess.call([sys.executable, "-m", "ferrymq.fuzz", "--target", _target_of(case),
                            "--replay", str(case)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert code == 0


def _planted(data: bytes) -> None:
    if b"\xff\xff" in data:  # the mutator's interesting integers put this in often
        raise KeyError("planted")


PLANTED = Target("planted", _planted, lambda: [b"abcdefgh" * 4], "nothing")


def test_the_engine_finds_saves_and_replays_a_planted_bug(tmp_path: Path) -> None:
    report = run(PLANTED, 20_000, 30.0, seed=7, save_dir=tmp_path)
    assert report.inputs == 20_000 and [sig.split("@")[0] for sig in report.findings] == ["KeyError"]
    [saved] = list((tmp_path / "planted").glob("*.bin"))
    with pytest.raises(KeyError):
        _planted(saved.read_bytes())
    assert crashed_input(tmp_path / "planted") is None  # a finished run leaves no crash file behind
    again = run(PLANTED, 20_000, 30.0, seed=7)
    assert again.findings == {sig: saved.read_bytes() for sig in report.findings}  # a seed replays


def test_a_run_without_bugs_reports_none_and_stops_at_its_input_count() -> None:
    report = run(Target("quiet", lambda data: None, lambda: [b"x"], "nothing"), 3_000, 30.0, seed=1)
    assert report.inputs == 3_000 and not report.findings and report.seed == 1


@given(st.integers(0, 2**32))
def test_mutations_are_bounded_and_replay_from_their_seed(n: int) -> None:
    seeds = [b"\x00" * 100, bytes(range(256)) * 300]
    first = mutate(random.Random(n), seeds)
    assert len(first) <= INPUT_MAX_BYTES and first == mutate(random.Random(n), seeds)
