"""The ferrymq.jobs side: an App and two jobs, as its users write them.

    ferrymq worker ferrymq.bench.jobs.ferrymq_app:app --processes 2 --concurrency N --queues Q

With ``FERRYMQ_JOBBENCH_SAMPLE`` set, each worker process also runs the stack sampler (``sampler``).
"""

from __future__ import annotations

from typing import Any

from ferrymq.bench.jobs import probe, sampler
from ferrymq.jobs import App


def make(url: str, queue: str) -> tuple[App, dict[str, Any]]:
    a = App(url)
    jobs = {fn.__name__: a.job(queue=queue, retries=0)(fn) for fn in (probe.noop, probe.stamp)}
    return a, jobs


app, jobs = make(*probe.settings())
sampler.start_if_asked()
