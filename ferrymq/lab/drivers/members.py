"""Kafka group members as fault subjects: the fault player kills, slows and restarts consumers by
the same four calls whatever they are, so a group member in the lab's own process answers them.

A "kill" of an in-process member stops its poll loop at once (the records it processed since its
last commit are read again by whoever takes its partitions) and closes the client, which leaves the
group: the group rebalances, and every member pauses while it does (the eager protocol aiokafka
speaks). The restart joins a new member under the same name: a second rebalance."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from ferrymq.lab.kafka import GroupMember


class MemberActor:
    def __init__(self, make: Callable[[], GroupMember]) -> None:
        self.make = make
        self.member: GroupMember | None = None
        self.base_ms = 0.0
        self._closing: asyncio.Task[None] | None = None

    async def start(self) -> MemberActor:
        self.member = self.make()
        self.base_ms = self.member.work_ms
        await self.member.start()
        return self

    def kill9(self) -> None:
        m, self.member = self.member, None
        if m is not None:
            if m.task is not None:
                m.task.cancel()
            self._closing = asyncio.create_task(m.stop())

    def pause(self) -> None:
        if self.member is not None and self.member.client is not None:
            self.member.client.pause(*self.member.client.assignment())

    def resume(self) -> None:
        if self.member is not None and self.member.client is not None:
            self.member.client.resume(*self.member.client.assignment())

    def slow(self, ms: float) -> None:
        if self.member is not None:
            self.member.work_ms = self.base_ms + ms

    async def restart(self) -> None:
        if self._closing is not None:
            with contextlib.suppress(Exception):
                await self._closing
        await self.start()

    async def stop(self) -> None:
        self.kill9()
        if self._closing is not None:
            with contextlib.suppress(Exception):
                await self._closing


async def stop_all(actors: list[Any]) -> None:
    await asyncio.gather(*(a.stop() for a in actors), return_exceptions=True)
