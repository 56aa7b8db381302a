#!/usr/bin/env bash
# Compat tier: run kombu's and py-amqp's own integration suites (from their PyPI sdists, never
# committed here) against a real `ferrymq serve`. TLS cases are deselected: FerryMQ has no TLS
# listener yet.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
py="$top/.venv/bin/python"
work=$(mktemp -d)
trap 'kill "${pid:-0}" 2>/dev/null || true; rm -rf "$work"' EXIT
kombu_v=$("$py" -c 'import kombu; print(kombu.__version__)')
amqp_v=$("$py" -c 'import amqp; print(amqp.__version__)')
"$py" -m pip download -q --no-deps --no-binary :all: -d "$work" "kombu==$kombu_v" "amqp==$amqp_v"
tar xzf "$work/kombu-$kombu_v.tar.gz" -C "$work"
tar xzf "$work/amqp-$amqp_v.tar.gz" -C "$work"
port=$("$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$py" -m ferrymq.cli serve --amqp-port "$port" --kafka-port 0 --http-port 0 --log-level error --data-dir "$work/data" &
pid=$!
for _ in $(seq 1 50); do (echo > "/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.2; done
export RABBITMQ_HOST=127.0.0.1 RABBITMQ_5672_TCP=$port
run() { (cd "$1" && timeout 600 "$py" -m pytest -q -p no:cacheprovider -o addopts="" --timeout 60 "${@:2}"); }
run "$work/kombu-$kombu_v" t/integration/test_py_amqp.py
run "$work/amqp-$amqp_v" t/integration/test_rmq.py t/integration/test_integration.py -k "not tls"
