"""`ferrymq bench jobs`: the job-system workload of issue 13, measured with real worker processes.

Each library runs as its users run it — its own client enqueues, its own worker command
(`dramatiq`, `celery -A ... worker`, `ferrymq worker`) consumes — on the same broker, one after the
other, in one run: a private `ferrymq serve` and a private RabbitMQ 3.10 node.

    A  drain:    enqueue N no-op jobs (the library's own client, its default persistence and
                 confirms), then start the workers; jobs/s for enqueue and for drain.
    B  latency:  workers running, 1,000 jobs/s paced for 20 s; enqueue -> start p50/p99.
    C  backlog:  1,000,000 waiting jobs; the broker's RSS.

How "done" is counted without a counter that bottlenecks: see ``probe``.
"""
