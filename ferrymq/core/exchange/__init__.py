"""Exchanges and routing, split by idea: ``binding`` (what a binding is), ``kinds`` (the exchange
types and their declare rules), ``headers`` (header matching), ``routing`` (resolve across
exchange-to-exchange bindings and alternates), ``trie`` (topic patterns), ``texts`` (how RabbitMQ
prints values in errors).

Texts and matching rules follow RabbitMQ 3.10.8, checked against a live node.
"""

from ferrymq.core.exchange.binding import Binding, freeze_args
from ferrymq.core.exchange.headers import X_MATCH_MODES, check_x_match, headers_match
from ferrymq.core.exchange.kinds import (
    DELAY_MAX_MS,
    DELAYED_TYPE,
    EXCHANGE_TYPES,
    DelayedExchange,
    DirectExchange,
    Exchange,
    FanoutExchange,
    HeadersExchange,
    TopicExchange,
    check_type,
    delay_ms,
    equivalent,
    make_exchange,
)
from ferrymq.core.exchange.routing import Route, resolve

__all__ = [
    "DELAYED_TYPE",
    "DELAY_MAX_MS",
    "EXCHANGE_TYPES",
    "X_MATCH_MODES",
    "Binding",
    "DelayedExchange",
    "DirectExchange",
    "Exchange",
    "FanoutExchange",
    "HeadersExchange",
    "Route",
    "TopicExchange",
    "check_type",
    "check_x_match",
    "delay_ms",
    "equivalent",
    "freeze_args",
    "headers_match",
    "make_exchange",
    "resolve",
]
