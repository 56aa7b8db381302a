"""Every route of the HTTP plane, gathered from the module that owns its noun."""

from __future__ import annotations

from aiohttp import web

from ferrymq.http import metrics
from ferrymq.http.api import (
    bindings,
    connections,
    definitions,
    dlq,
    exchanges,
    health,
    jobs,
    kafka,
    limits,
    nodes,
    overview,
    policies,
    queues,
    routing,
    topic_permissions,
    traces,
)
from ferrymq.http.dashboard import pages
from ferrymq.http.push import sse as push_sse
from ferrymq.http.push import ws as push_ws
from ferrymq.http.sns import endpoint as sns
from ferrymq.http.sqs import endpoint as sqs

TABLES = (overview.routes, queues.routes, exchanges.routes, bindings.routes, connections.routes,
          policies.routes, definitions.routes, health.routes, kafka.routes, routing.routes,
          dlq.routes, traces.routes, metrics.routes, pages.routes, sqs.routes, sns.routes,
          push_ws.routes, push_sse.routes, jobs.routes, limits.routes, nodes.routes,
          topic_permissions.routes)


def register(app: web.Application) -> None:
    for table in TABLES:
        app.router.add_routes(table)
    pages.add_static(app)
    sqs.setup(app)
    sns.setup(app)
