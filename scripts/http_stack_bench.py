"""Pick the HTTP plane's server stack by measurement: aiohttp vs uvicorn + Starlette, both on uvloop,
each serving the same two endpoints from one process on one core, driven by wrk on loopback.

    python scripts/http_stack_bench.py [--seconds 5]

Endpoints: /small (a 60-byte JSON object, like /api/whoami) and /list (200 queue objects, like
/api/queues). Prints requests/s and wrk's latency per stack and endpoint.
"""

from __future__ import annotations

import argparse
import json
import re
import socket
import subprocess
import sys
import time

SMALL = {"name": "guest", "tags": ["administrator"], "limits": {}}
LIST = [{"name": f"q{i}", "vhost": "/", "messages": i, "messages_ready": i, "messages_unacknowledged": 0,
         "consumers": 1, "durable": True, "auto_delete": False, "arguments": {}, "state": "running"}
        for i in range(200)]


def serve_aiohttp(port: int) -> None:
    import uvloop
    from aiohttp import web

    small, big = json.dumps(SMALL).encode(), None

    async def h_small(request: web.Request) -> web.Response:
        return web.Response(body=small, content_type="application/json")

    async def h_list(request: web.Request) -> web.Response:
        return web.Response(body=json.dumps(LIST).encode(), content_type="application/json")

    app = web.Application()
    app.router.add_get("/small", h_small)
    app.router.add_get("/list", h_list)
    del big
    uvloop.install()
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


def serve_starlette(port: int) -> None:
    import uvicorn
    from starlette.applications import Starlette
    from starlette.responses import Response
    from starlette.routing import Route

    small = json.dumps(SMALL).encode()

    async def h_small(request):  # type: ignore[no-untyped-def]
        return Response(small, media_type="application/json")

    async def h_list(request):  # type: ignore[no-untyped-def]
        return Response(json.dumps(LIST).encode(), media_type="application/json")

    app = Starlette(routes=[Route("/small", h_small), Route("/list", h_list)])
    uvicorn.run(app, host="127.0.0.1", port=port, loop="uvloop", http="httptools", log_level="error",
                access_log=False)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wrk(port: int, path: str, seconds: int) -> tuple[float, str]:
    out = subprocess.run(["wrk", "-t1", "-c16", f"-d{seconds}s", f"http://127.0.0.1:{port}{path}"],
                         capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    lat = re.search(r"Latency\s+(\S+)", out).group(1)  # type: ignore[union-attr]
    return rps, lat


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--serve", choices=["aiohttp", "starlette"])
    ap.add_argument("--port", type=int)
    args = ap.parse_args()
    if args.serve:
        {"aiohttp": serve_aiohttp, "starlette": serve_starlette}[args.serve](args.port)
        return
    for stack in ("aiohttp", "starlette"):
        port = free_port()
        proc = subprocess.Popen([sys.executable, __file__, "--serve", stack, "--port", str(port)])
        try:
            for _ in range(100):
                try:
                    socket.create_connection(("127.0.0.1", port), 0.2).close()
                    break
                except OSError:
                    time.sleep(0.1)
            for path in ("/small", "/list"):
                rps, lat = wrk(port, path, args.seconds)
                print(f"{stack:10s} {path:7s} {rps:10.0f} req/s  mean latency {lat}", flush=True)
        finally:
            proc.terminate()
            proc.wait()


if __name__ == "__main__":
    main()
