#!/usr/bin/env bash
# Compat tier: the Kafka clients' own integration suites against a real `ferrymq serve` (never committed
# here). Sources are git snapshots (the `fetch` tool puts them under /work/.mirror; override with
# AIOKAFKA_GIT, KAFKA_PYTHON_GIT, LIBRDKAFKA_GIT); each suite runs in a venv of its own so nothing it
# installs reaches the project's .venv. Prints pass/fail/skip per suite and the failing test ids; the
# JUnit/log files stay in $KAFKA_SUITES_WORK (default: a temp dir, kept).
#
#   scripts/kafka-upstream-suites.sh [aiokafka] [kafka-python] [librdkafka]     (default: all three)
#
# AIOKAFKA_TESTS / KAFKA_PYTHON_TESTS replace the pytest arguments naming what runs (default: the
# whole suite), e.g. AIOKAFKA_TESTS="tests/test_consumer.py -k 'pattern or rebalance'" to rerun a few tests; a venv
# is reused when its package list is unchanged. The broker starts as the suites' Kafka fixtures start
# Kafka: their num.partitions, and the users their ACL tests name as principals (acl_principals.py).
# KAFKA_VERSION / TEST_KAFKA_VERSION are what kafka-python infers from FerryMQ's ApiVersions.
#
# librdkafka needs a C toolchain and libssl-dev (installed with apt-get when missing, as .ci/run
# installs its packages; without it the build falls back to --disable-ssl); it builds the library and
# its test runner, then runs the quick-mode (-Q) slice listed in LIBRDKAFKA_TESTS with test.conf
# pointing at FerryMQ.
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
here="$top/scripts/kafka_upstream"
py="$top/.venv/bin/python"
work=${KAFKA_SUITES_WORK:-$(mktemp -d /tmp/ferrymq-kafka-suites.XXXXXX)}
mkdir -p "$work"
AIOKAFKA_GIT=${AIOKAFKA_GIT:-/work/.mirror/aio-libs+aiokafka/repo}
KAFKA_PYTHON_GIT=${KAFKA_PYTHON_GIT:-/work/.mirror/dpkp+kafka-python/repo}
LIBRDKAFKA_GIT=${LIBRDKAFKA_GIT:-/work/.mirror/confluentinc+librdkafka/repo}
LIBRDKAFKA_TESTS=${LIBRDKAFKA_TESTS:-"0001 0002 0003 0004 0005 0007 0008 0011 0012 0013 0014 0015 0017 0019 0020 0021 0022 0026 0029 0030 0031 0034 0035 0036 0037 0038 0039 0040 0041 0042 0043 0044 0045 0046 0047 0048 0049 0050 0051 0052 0053 0055 0056 0057 0058 0059 0060 0061 0062 0063 0064 0065 0066 0067 0068 0069 0070 0071 0072 0073 0074 0075 0076 0077 0078 0079 0080 0081 0082 0083 0084 0085"}
AIOKAFKA_TESTS=${AIOKAFKA_TESTS:-tests}
KAFKA_PYTHON_TESTS=${KAFKA_PYTHON_TESTS:-test/integration}
ACL_PRINCIPALS="test test1 test2"  # kafka-python test_create_describe_delete_acls, librdkafka 0081_admin
pid=""
trap 'stop_broker' EXIT

free_port() { "$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

start_broker() {  # $1: name, $2: default partitions (the upstream fixtures' num.partitions), $3: "tls"
  port=$(free_port) http=$(free_port) ssl_port=0
  local certs="$work/certs-$1" tls=()
  rm -rf "$work/data-$1"
  if [ "${3:-}" = tls ]; then  # a TLS Kafka listener too, with `ferrymq certs` (a client certificate too)
    ssl_port=$(free_port)
    PYTHONPATH="$top" "$py" -m ferrymq.cli certs --dir "$certs" --client client > /dev/null || return 1
    tls=(FERRYMQ_TLS_CERT_FILE="$certs/server.pem" FERRYMQ_TLS_KEY_FILE="$certs/server.key"
         FERRYMQ_TLS_CA_FILE="$certs/ca.pem")
  fi
  env "${tls[@]}" FERRYMQ_KAFKA_NUM_PARTITIONS="$2" PYTHONPATH="$top" "$py" -m ferrymq.cli serve \
    --data-dir "$work/data-$1" --amqp-port 0 --http-port "$http" --kafka-port "$port" \
    --kafka-ssl-port "$ssl_port" --fsync never --log-level error > "$work/broker-$1.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 100); do
    if (echo > "/dev/tcp/127.0.0.1/$port") 2>/dev/null && (echo > "/dev/tcp/127.0.0.1/$http") 2>/dev/null; then
      "$py" "$here/acl_principals.py" "$http" $ACL_PRINCIPALS && return 0
      echo "could not create the ACL principals' users" >&2; return 1
    fi
    sleep 0.2
  done
  echo "broker for $1 did not start" >&2; return 1
}

kafka_version() {  # what kafka-python (in venv $1) infers from the running broker's ApiVersions
  "$1/bin/python" "$here/kafka_version.py" "127.0.0.1:$port"
}

stop_broker() { if [ -n "$pid" ]; then kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; pid=""; fi; }

unpack() {  # $1: git dir, $2: target
  rm -rf "$2" && mkdir -p "$2" && git --git-dir="$1" archive HEAD | tar -x -C "$2"
  echo "$(basename "$(dirname "$1")") at $(git --git-dir="$1" log -1 --format='%h %ad' --date=short)"
}

venv() {  # $1: dir, rest: packages; kept while the package list is the same
  [ -x "$1/bin/python" ] && [ "$(cat "$1/.packages" 2>/dev/null)" = "${*:2}" ] && return 0
  "$py" -m venv "$1" && "$1/bin/python" -m pip install -q --upgrade pip >/dev/null \
    && "$1/bin/python" -m pip install -q "${@:2}" && echo "${*:2}" > "$1/.packages"
}

summary() { "$py" "$here/junit_summary.py" "$@"; }

suite_aiokafka() {
  local src="$work/aiokafka" v
  unpack "$AIOKAFKA_GIT" "$src" || return 1
  v=$(sed -n 's/^__version__ = "\(.*\)"/\1/p' "$src/aiokafka/__init__.py")
  # the test tools at the versions aiokafka's CI pins (pytest-asyncio's warnings are errors there)
  venv "$work/venv-aiokafka" "aiokafka==$v" pytest-timeout \
    $(grep -E '^(pytest|pytest-asyncio|pytest-mock|async-timeout|cramjam)==' "$src/requirements-ci.txt") || return 1
  local -a args; eval "args=($AIOKAFKA_TESTS)"  # quotes allowed: "-k 'a or b'"
  rm -rf "$src/aiokafka"  # the installed wheel (with its C extensions), not the bare sources
  cat "$here/aiokafka_conftest.py" >> "$src/tests/conftest.py"
  cp "$here/docker.py" "$src/docker.py"
  start_broker aiokafka 2 tls || return 1
  # the SSL tests' files, as aiokafka's gen-ssl-certs.sh names them (its key's password is ignored: ours
  # is not encrypted)
  mkdir -p "$src/tests/ssl_cert" && cp "$work/certs-aiokafka/ca.pem" "$src/tests/ssl_cert/ca.crt" \
    && cp "$work/certs-aiokafka/client.pem" "$src/tests/ssl_cert/client.crt" \
    && cp "$work/certs-aiokafka/client.key" "$src/tests/ssl_cert/client.key" || return 1
  # the image tag's Kafka version gates aiokafka's @kafka_versions tests: FerryMQ's, as kafka-python reads it
  local kv; kv=$(kafka_version "$top/.venv") || return 1
  echo "docker image tag ferrymq:2.12_$kv (Kafka version inferred from FerryMQ's ApiVersions)"
  (cd "$src" && KAFKA_HOST=127.0.0.1 KAFKA_PORT=$port KAFKA_SSL_PORT=$ssl_port timeout 1500 \
     "$work/venv-aiokafka/bin/python" -m pytest -q -p no:cacheprovider --timeout 60 \
     --docker-image "ferrymq:2.12_$kv" --junitxml="$work/aiokafka.xml" "${args[@]}" > "$work/aiokafka.log" 2>&1)
  stop_broker
  summary aiokafka "$work/aiokafka.xml"
}

suite_kafka_python() {
  local src="$work/kafka-python"
  unpack "$KAFKA_PYTHON_GIT" "$src" || return 1
  venv "$work/venv-kafka-python" "$src" pytest pytest-mock pytest-timeout crc32c lz4 python-snappy zstandard xxhash \
    || return 1
  start_broker kafka-python 4 || return 1
  cat "$here/kafka_python_conftest.py" >> "$src/test/integration/conftest.py"  # SSL tests: a TLS ferrymq
  mkdir -p "$work/kafka-root"  # the fixtures check for a Kafka install even when told to use ours
  local -a args; eval "args=($KAFKA_PYTHON_TESTS)"
  local kv; kv=$(kafka_version "$work/venv-kafka-python") || return 1
  echo "KAFKA_VERSION=$kv (inferred from FerryMQ's ApiVersions)"
  # --timeout 120: test_kafka_consumer_offsets_for_times_errors waits out the client's 60 s
  # default_api_timeout_ms by design (kafka-python's own pytest settings allow 300 s a test)
  (cd "$src" && SUITES_FERRYMQ_PY="$py" SUITES_FERRYMQ_TOP="$top" KAFKA_VERSION=$kv \
     KAFKA_URI="kafka://127.0.0.1:$port" KAFKA_ROOT="$work/kafka-root" timeout 1500 \
     "$work/venv-kafka-python/bin/python" -m pytest -q -p no:cacheprovider -o addopts="" --timeout 120 \
     --junitxml="$work/kafka-python.xml" "${args[@]}" > "$work/kafka-python.log" 2>&1)
  stop_broker
  summary kafka-python "$work/kafka-python.xml"
}

ssl_dev() {  # libssl-dev present, or installed as .ci/run installs its packages; else say so
  dpkg -s libssl-dev >/dev/null 2>&1 && return 0
  [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null || return 1
  { apt-get update -qq && apt-get install -y -qq libssl-dev; } >/dev/null 2>&1
}

suite_librdkafka() {
  local src="$work/librdkafka" flags="--disable-gssapi --disable-curl"
  ssl_dev || { flags="--disable-ssl $flags"; echo "no libssl-dev: librdkafka built --disable-ssl (0064 fails)"; }
  if [ ! -x "$src/tests/test-runner" ] || [ "$(cat "$src/.ferrymq-build" 2>/dev/null)" != "$flags" ]; then
    unpack "$LIBRDKAFKA_GIT" "$src" || return 1
    # shellcheck disable=SC2086  # the flags are words
    (cd "$src" && ./configure $flags && make -j2 libs && make -C tests build) > "$work/librdkafka-build.log" 2>&1 \
      || { echo "librdkafka build failed"; return 1; }
    echo "$flags" > "$src/.ferrymq-build"
  fi
  echo "librdkafka built with: $flags"
  start_broker librdkafka 4 || return 1
  local kv; kv=$(kafka_version "$top/.venv") || return 1
  case $kv in *.*.*) ;; *) kv=$kv.0 ;; esac  # 2.4 -> 2.4.0: the runner reads three parts or more
  echo "TEST_KAFKA_VERSION=$kv (inferred from FerryMQ's ApiVersions)"
  printf 'bootstrap.servers=127.0.0.1:%s\n' "$port" > "$src/tests/test.conf"
  # 0052 and 0077 make their topics with Kafka's bin/kafka-topics.sh: ours makes them with CreateTopics
  mkdir -p "$work/kafka-cli/bin"
  printf '#!/bin/sh\nPYTHONPATH= exec "%s" "%s" "$@"\n' "$py" "$here/kafka_topics.py" > "$work/kafka-cli/bin/kafka-topics.sh"
  chmod +x "$work/kafka-cli/bin/kafka-topics.sh"
  export KAFKA_PATH="$work/kafka-cli" ZK_ADDRESS="127.0.0.1:$port" BROKERS="127.0.0.1:$port"
  : > "$work/librdkafka.log"
  for t in $LIBRDKAFKA_TESTS; do
    (cd "$src/tests" && LD_LIBRARY_PATH=../src:../src-cpp TESTS=$t TEST_KAFKA_VERSION=$kv timeout 60 \
       ./test-runner -Q -p1 >> "$work/librdkafka.log" 2>&1) && echo "PASS $t" || echo "FAIL $t"
  done | tee "$work/librdkafka.results"
  stop_broker
  echo "librdkafka: $(grep -c PASS "$work/librdkafka.results") passed, $(grep -c FAIL "$work/librdkafka.results") failed"
}

suites=${*:-aiokafka kafka-python librdkafka}
for s in $suites; do
  echo "== $s"
  "suite_${s//-/_}"
done
echo "logs and JUnit files: $work"
