"""A cron scheduler in its own process, for tests that run several over one SQLite file.

    python -m tests.support.cron_child DB_URL HOLDER START_MS LEASE_MS

Each line on stdin is an instant (ms): the process sets its ManualClock to it, ticks once and
prints one JSON line: the lease token it holds (null: standby) and the keys of the jobs it ran.
The parent moves every process's clock in step, so an hour replays in a second.
"""

from __future__ import annotations

import json
import sys

from ferrymq.clock import ManualClock
from ferrymq.jobs import App, current
from ferrymq.jobs.db import Database
from ferrymq.jobs.scheduler import Scheduler


def main() -> None:
    url, holder, start_ms, lease_ms = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    clock = ManualClock(start_ms)
    runs: list[str] = []
    app = App("eager://", store=Database(url, durable=False), clock=clock)
    app.schedule("tick", "* * * * *")(lambda: runs.append(current.message.key))
    scheduler = Scheduler(app, holder=holder, lease_ms=lease_ms)
    for line in sys.stdin:
        clock.advance(int(line) - clock.now_ms())
        runs.clear()
        scheduler.tick()
        print(json.dumps({"token": scheduler.token, "runs": runs}), flush=True)


if __name__ == "__main__":
    main()
