"""EmbeddedBroker: the real `serve` stack on free ports in a background thread, for tests."""

from __future__ import annotations

import asyncio
import tempfile
import threading
from types import TracebackType
from typing import Any

from ferrymq.clock import Clock
from ferrymq.config import Settings
from ferrymq.server.app import Running, new_event_loop, serve


class EmbeddedBroker:
    """``with EmbeddedBroker() as broker: pika.BlockingConnection(pika.URLParameters(broker.amqp_url))``

    ``clock``: the one clock every layer reads (a ManualClock makes TTLs, session timeouts and
    record timestamps move only when the test says so); SystemClock by default."""

    def __init__(self, *, clock: Clock | None = None, **settings: Any) -> None:
        self.clock = clock
        self.settings = Settings(amqp_port=0, kafka_port=0, http_port=0)
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if "data_dir" not in settings:  # a private, temporary data directory, fsync as configured
            self._tmp = tempfile.TemporaryDirectory(prefix="ferrymq-embedded-")
            settings["data_dir"] = self._tmp.name
        self.settings.update(settings)
        self.running: Running | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="ferrymq-embedded", daemon=True)

    @property
    def amqp_port(self) -> int:
        assert self.running is not None, "broker not started"
        return self.running.amqp_port

    @property
    def kafka_port(self) -> int:
        assert self.running is not None, "broker not started"
        return self.running.kafka_port

    @property
    def kafka_bootstrap(self) -> str:
        """``host:port`` for a Kafka client's bootstrap servers."""
        return f"{self.settings.host}:{self.kafka_port}"

    @property
    def http_port(self) -> int:
        assert self.running is not None, "broker not started"
        return self.running.http_port

    @property
    def http_url(self) -> str:
        """``http://host:port`` of the management API, /metrics and the dashboard."""
        return f"http://{self.settings.host}:{self.http_port}"

    @property
    def amqp_url(self) -> str:
        return f"amqp://guest:guest@{self.settings.host}:{self.amqp_port}/%2F"

    @property
    def amqps_port(self) -> int:
        """The AMQPS listener's port (``amqps_port=-1`` and the tls_* settings turn it on)."""
        assert self.running is not None, "broker not started"
        return self.running.amqps_port

    @property
    def kafka_ssl_port(self) -> int:
        assert self.running is not None, "broker not started"
        return self.running.kafka_ssl_port

    @property
    def https_port(self) -> int:
        assert self.running is not None, "broker not started"
        return self.running.https_port

    def start(self) -> EmbeddedBroker:
        self._thread.start()
        self._ready.wait(30)
        if self._error is not None:
            raise RuntimeError("embedded broker failed to start") from self._error
        return self

    def _main(self) -> None:
        loop = self._loop = new_event_loop()
        try:
            self._stop = asyncio.Event()
            loop.run_until_complete(serve(self.settings, self._stop, self._on_ready, self.clock))
        except BaseException as exc:  # reported to the starting thread
            self._error = exc
            self._ready.set()
        finally:
            loop.close()

    def _on_ready(self, running: Running) -> None:
        self.running = running
        self._ready.set()

    def call(self, fn: Any, *args: Any) -> Any:
        """Run ``fn(*args)`` on the broker's loop (inspect core state safely from a test)."""
        assert self._loop is not None
        async def _run() -> Any:
            return fn(*args)
        return asyncio.run_coroutine_threadsafe(_run(), self._loop).result(10)

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(10)
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
