# Two commands matter on a fresh machine: `make serve` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: serve test lint compat bench soak sim clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

serve: $(STAMP)
	$(BIN)/ferrymq serve

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/mypy
	$(BIN)/python -m pytest -q -x --durations=10 tests --ignore=tests/lab --ignore=tests/crash --ignore=tests/compat
	$(BIN)/python -m pytest -q -x --durations=5 -n 4 --dist loadfile -m "not lab_rabbitmq" tests/lab tests/crash

# QueueLab's scenarios against RabbitMQ (Debian's rabbitmq-server), the same short forms (.ci/run).
.PHONY: lab-compat
lab-compat: $(STAMP)
	$(BIN)/python -m pytest -q --durations=5 -n 3 --dist loadfile -m lab_rabbitmq tests/lab

# Compat tier (.ci/run calls it after make test): the third-party client and RabbitMQ-differential
# tests in tests/compat (real clients, private RabbitMQ nodes, headless Chromium), then the upstream
# client suites (kombu, py-amqp) against a real `ferrymq serve`.
compat: $(STAMP)
	$(BIN)/python -m pytest -q -x --durations=10 tests/compat
	scripts/upstream-suites.sh

# Compat tier, Kafka: aiokafka's and kafka-python's integration suites and a quick librdkafka slice
# against a real `ferrymq serve` (about 20 minutes; sources from git snapshots, never committed).
.PHONY: kafka-compat
kafka-compat: $(STAMP)
	scripts/kafka-upstream-suites.sh

# Side-by-side benchmark against a private RabbitMQ node (needs rabbitmq-server): reports (JSON +
# HTML) per workload under bench-results/, tables on stdout, then the generator's sink ceiling.
bench: $(STAMP)
	mkdir -p bench-results
	$(BIN)/python -m ferrymq.bench.compare --seconds 10 --out bench-results | tee bench-results/compare.md

# Job libraries side by side (issue 13): ferrymq.jobs, Dramatiq and Celery workers on ferrymq serve
# and a private RabbitMQ node; 20,000-job drain and paced latency; JSON under bench-results/.
.PHONY: bench-jobs
bench-jobs: $(STAMP)
	mkdir -p bench-results
	$(BIN)/ferrymq bench jobs --out bench-results --markdown bench-results/jobs.md

# SQS (issue 14): a private ferrymq serve beside moto's server mode, raw HTTP generator (JSON 1.0):
# send batch -> receive -> delete batch for 10 s, then 1,000 idle long-pollers for 30 s. Both run even
# when the first fails (moto delivers duplicates under concurrency: the run says so and exits 1).
.PHONY: bench-sqs
bench-sqs: $(STAMP)
	mkdir -p bench-results
	$(BIN)/ferrymq bench sqs --target ferrymq --compare moto --verify --markdown bench-results/sqs-pipeline.md; \
	a=$$?; $(BIN)/ferrymq bench sqs --target ferrymq --compare moto --workload idle-pollers \
	    --markdown bench-results/sqs-idle.md; b=$$?; exit $$((a | b))

# Deterministic simulation (ferrymq/sim): real core and codecs, seeded network, power losses. 200 seeds
# x 2,000 steps, bounded at about 1 minute on 2 cores; a failure prints `ferrymq sim --seed N --steps M`.
# (`make test` runs a bounded slice of seeds through tests/sim.)
sim: $(STAMP)
	$(BIN)/ferrymq sim --seeds $${SIM_SEEDS:-200} --steps $${SIM_STEPS:-2000}

# (Knobs are not FERRYMQ_* variables: the broker refuses unknown FERRYMQ_* settings, a typo guard.)
# The kill -9 loop of tests/crash, longer (bounded: about 2 s per cycle), then 5,000 simulation seeds
# x 2,000 steps beyond the ones `make test` and `make sim` run (bounded: about 0.2 s per seed, ~17 min).
# QueueLab (issue 15): every built-in scenario at full size on FerryMQ (queue and log mode as each
# scenario names), reports under lab-results/; bounded at LAB_BOUND_S (default 45 minutes) in all.
.PHONY: lab
lab: $(STAMP)
	timeout $${LAB_BOUND_S:-2700} scripts/lab-all.sh lab-results

soak: $(STAMP)
	CRASH_CYCLES=$${CRASH_CYCLES:-200} $(BIN)/python -m pytest -q tests/crash
	$(BIN)/ferrymq sim --first 1000 --seeds $${SIM_SOAK_SEEDS:-5000} --steps 2000

# Fuzzing (issue 16): every ferrymq.fuzz target (`python -m ferrymq.fuzz --list`) for FUZZ_INPUTS
# inputs (default 10 million) or FUZZ_SECONDS each, whichever ends first; FUZZ_JOBS at a time.
# Defaults: 12 targets x 540 s, two at a time, about 55 minutes on 2 cores. A finding is saved under
# tests/fuzz/regressions/<target>/ (replay: --replay FILE) and the run exits non-zero.
.PHONY: fuzz
fuzz: $(STAMP)
	$(BIN)/python -m ferrymq.fuzz --list | xargs -P $${FUZZ_JOBS:-2} -I{} $(BIN)/python -m ferrymq.fuzz \
	    --target {} --inputs $${FUZZ_INPUTS:-10000000} --seconds $${FUZZ_SECONDS:-540}

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build *.egg-info
