"""Connection and channel states, and the transition tables that drive them.

As in h11, a legal move is a table entry and an illegal one is a lookup miss that the connection
turns into the reply code RabbitMQ sends for it. Tables map (state, method id) to the name of the
action the connection runs (``AMQPServerConnection._on_<name>``).
"""

from __future__ import annotations

from ferrymq.protocols.amqp.frames import (
    BASIC_ACK,
    BASIC_NACK,
    BASIC_PUBLISH,
    BASIC_REJECT,
    CHANNEL_CLOSE,
    CHANNEL_CLOSE_OK,
    CHANNEL_FLOW,
    CHANNEL_OPEN,
    CONNECTION_CLOSE,
    CONNECTION_CLOSE_OK,
    CONNECTION_OPEN,
    CONNECTION_START_OK,
    CONNECTION_TUNE_OK,
    CONNECTION_UPDATE_SECRET,
    DELEGATED_METHODS,
)

# --- connection states, in order: everything before RUNNING is the handshake ---
AWAITING_HEADER = 0  # nothing received yet: the 8-byte protocol header comes first
STARTING = 1  # connection.start sent, awaiting start-ok
TUNING = 2  # connection.tune sent, awaiting tune-ok
OPENING = 3  # awaiting connection.open
RUNNING = 4
CLOSING = 5  # we sent connection.close: only close / close-ok matter now
CLOSED = 6

# RabbitMQ's names for them, as they appear in its error texts.
STATE_NAMES = {
    AWAITING_HEADER: "handshake", STARTING: "starting", TUNING: "tuning", OPENING: "opening",
    RUNNING: "running", CLOSING: "closing", CLOSED: "closed",
}

CONNECTION_TABLE: dict[tuple[int, int], str] = {
    (STARTING, CONNECTION_START_OK): "start_ok",
    (STARTING, CONNECTION_CLOSE): "client_close",
    (TUNING, CONNECTION_TUNE_OK): "tune_ok",
    (TUNING, CONNECTION_CLOSE): "client_close",
    (OPENING, CONNECTION_OPEN): "open",
    (OPENING, CONNECTION_CLOSE): "client_close",
    (RUNNING, CONNECTION_CLOSE): "client_close",
    (RUNNING, CONNECTION_UPDATE_SECRET): "update_secret",
    (CLOSING, CONNECTION_CLOSE): "close_crossed",
    (CLOSING, CONNECTION_CLOSE_OK): "close_ok",
}

# --- channel phases (a channel that was never opened has no entry at all) ---
CH_OPEN = 0  # awaiting a method
CH_HEADER = 1  # basic.publish received, awaiting its content header
CH_BODY = 2  # awaiting body frames
CH_CLOSING = 3  # we sent channel.close: only close / close-ok matter now

CHANNEL_TABLE: dict[tuple[int, int], str] = {
    (CH_OPEN, CHANNEL_OPEN): "second_open",
    (CH_OPEN, CHANNEL_FLOW): "flow",
    (CH_OPEN, CHANNEL_CLOSE): "channel_close",
    (CH_OPEN, BASIC_PUBLISH): "publish",
    (CH_OPEN, BASIC_ACK): "ack",
    (CH_OPEN, BASIC_NACK): "nack",
    (CH_OPEN, BASIC_REJECT): "reject",
    **{(CH_OPEN, cm): "delegate" for cm in DELEGATED_METHODS},
    (CH_CLOSING, CHANNEL_CLOSE): "close_crossed_on_channel",
    (CH_CLOSING, CHANNEL_CLOSE_OK): "channel_close_ok",
}
