#!/usr/bin/env bash
# Every built-in QueueLab scenario at full size, one after the other; reports in $1 (lab-results).
# A failing scenario is reported and the rest still run; the exit status says whether any failed.
set -uo pipefail
out="${1:-lab-results}"
bin="$(dirname "$0")/../.venv/bin"
mkdir -p "$out"
failed=0
for name in $("$bin/ferrymq" lab --list | awk '{print $1}'); do
  echo "== $name ($(uptime | sed 's/.*load/load/'))"
  "$bin/ferrymq" lab "$name" --no-progress --out "$out" || { echo "!! $name failed"; failed=1; }
done
exit $failed
