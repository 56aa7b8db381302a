"""A core channel's effects turned into frames: deliveries, publisher confirms (runs of acks
coalesced into one multiple ack, held in the commit pipeline while a write is not yet covered by an
fsync), returns, cancels and channel closes.

Shared by the server's AMQP connections and the simulator's node (ferrymq.sim): both give the small
``EffectConnection`` interface below, so the rule for when a confirm may leave is run, not copied.
No asyncio here (an import contract keeps it so): the simulator imports this module.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from pamqp import commands

from ferrymq.core.channel import CANCEL, CLOSE, CONFIRM, DELIVER, RETURN, Channel
from ferrymq.protocols.amqp.connection import AMQPServerConnection

Send = Callable[[bool], None]


class ReplyHold(Protocol):
    """Who holds replies until the commit covering them returns (the AMQP server, the sim's node)."""

    @property
    def commit(self) -> Any: ...  # has must_hold(): a write is not yet covered, or replies wait

    def hold(self, conn: Any, ch: Channel, send: Send) -> None:
        """``send(stored)`` once the commit covering this turn returns, if ``ch`` is still open."""
        ...


class EffectConnection(Protocol):
    @property
    def codec(self) -> AMQPServerConnection: ...

    @property
    def server(self) -> ReplyHold: ...


def drain(conn: EffectConnection, ch: Channel) -> None:
    """Encode a channel's pending effects; runs of publisher acks become one multiple ack."""
    if not ch.outbox:
        return
    effects, ch.outbox = ch.outbox, []
    codec, number = conn.codec, ch.number
    # Confirms wait for the fsync that covers the messages logged this turn (and keep order).
    hold = conn.server.commit.must_hold()
    pending_ack = 0
    count = 0
    for eff in effects:
        kind = eff[0]
        if kind == CONFIRM and eff[2]:
            pending_ack = eff[1]
            count += 1
            continue
        if pending_ack:
            _confirm(conn, hold, ch, pending_ack, count > 1, True)
            pending_ack = count = 0
        if kind == DELIVER:
            codec.send_deliver(number, *eff[1:])
        elif kind == CONFIRM:
            _confirm(conn, hold, ch, eff[1], False, False)
        else:
            _rare_effect(codec, number, eff)
    if pending_ack:
        _confirm(conn, hold, ch, pending_ack, count > 1, True)


def _confirm(conn: EffectConnection, hold: bool, ch: Channel, tag: int, multiple: bool, ack: bool) -> None:
    send = conn.codec.send_confirm
    if not hold:
        send(ch.number, tag, multiple, ack)
    else:  # a failed commit turns the held acks into nacks
        conn.server.hold(conn, ch, lambda stored: send(ch.number, tag, multiple, ack and stored))


def _rare_effect(codec: AMQPServerConnection, number: int, eff: tuple[Any, ...]) -> None:
    kind = eff[0]
    if kind == RETURN:
        codec.send_return(number, *eff[1:])
    elif kind == CANCEL:
        codec.send_method(number, commands.Basic.Cancel(eff[1]))
    elif kind == CLOSE:
        codec.close_channel(number, eff[1], eff[2], 0, 0)
