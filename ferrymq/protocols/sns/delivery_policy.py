"""HTTP/S delivery retries: AWS's ``DeliveryPolicy`` (``healthyRetryPolicy``) turned into the list of
waits before each retry, so the schedule is data a test can read rather than timing it observes.

AWS's four phases, in order: ``numNoDelayRetries`` at once, ``numMinDelayRetries`` at
``minDelayTarget``, the backoff phase (the retries left over) rising from ``minDelayTarget`` to
``maxDelayTarget`` by ``backoffFunction``, then ``numMaxDelayRetries`` at ``maxDelayTarget``.
The backoff curves: linear (even steps), arithmetic (quadratic, slow then fast), exponential
(geometric growth, min * (max / min) ** t) and geometric (square root, fast then slow) — AWS draws
them but publishes no formula; these keep its ordering of the four.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ferrymq import limits

FUNCTIONS = ("linear", "arithmetic", "exponential", "geometric")
DEFAULT = {"minDelayTarget": 20, "maxDelayTarget": 20, "numRetries": 3, "numMaxDelayRetries": 0,
           "numNoDelayRetries": 0, "numMinDelayRetries": 0, "backoffFunction": "linear"}


class DeliveryPolicyError(ValueError):
    pass


def default_text(topic: bool = False) -> str:
    """The EffectiveDeliveryPolicy of a topic or subscription that sets none (as AWS shows it)."""
    doc: dict[str, Any] = {"healthyRetryPolicy": DEFAULT, "throttlePolicy": {}, "guaranteed": False}
    if topic:
        doc = {"http": {"defaultHealthyRetryPolicy": DEFAULT, "disableSubscriptionOverrides": False}}
    return json.dumps(doc, separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    min_delay_s: int
    max_delay_s: int
    retries: int
    no_delay: int
    min_delay: int
    max_delay: int
    function: str

    def delays_s(self) -> list[float]:
        """The wait before each retry, first to last (len == retries)."""
        backoff = self.retries - self.no_delay - self.min_delay - self.max_delay
        out = [0.0] * self.no_delay + [float(self.min_delay_s)] * self.min_delay
        out += [self._backoff(i, backoff) for i in range(backoff)]
        return out + [float(self.max_delay_s)] * self.max_delay

    def _backoff(self, i: int, n: int) -> float:
        low, high = float(self.min_delay_s), float(self.max_delay_s)
        t = i / (n - 1) if n > 1 else 0.0
        if self.function == "exponential":
            return low * (high / low) ** t
        shape = {"linear": t, "arithmetic": t * t, "geometric": t ** 0.5}[self.function]
        return low + (high - low) * shape


def _integer(raw: dict[str, Any], key: str, low: int, high: int) -> int:
    value = raw.get(key, DEFAULT[key])
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise DeliveryPolicyError(f"{key} must be an integer from {low} to {high}")
    return value


def parse(text: str | None) -> RetryPolicy:
    """The healthyRetryPolicy of a DeliveryPolicy JSON text (AWS's defaults for what it leaves out)."""
    try:
        doc = json.loads(text) if text else {}
    except ValueError:
        raise DeliveryPolicyError("DeliveryPolicy: failed to parse JSON") from None
    if not isinstance(doc, dict):
        raise DeliveryPolicyError("DeliveryPolicy must be a JSON object")
    raw = doc.get("healthyRetryPolicy")  # a subscription's; a topic's sits under http
    if raw is None and isinstance(doc.get("http"), dict):
        raw = doc["http"].get("defaultHealthyRetryPolicy")
    raw = {} if raw is None else raw
    if not isinstance(raw, dict):
        raise DeliveryPolicyError("healthyRetryPolicy must be a JSON object")
    retries = _integer(raw, "numRetries", 0, limits.SNS_HTTP_RETRIES_MAX)
    max_delay_s = _integer(raw, "maxDelayTarget", 1, limits.SNS_HTTP_DELAY_MAX_S)
    policy = RetryPolicy(_integer(raw, "minDelayTarget", 1, max_delay_s), max_delay_s, retries,
                         _integer(raw, "numNoDelayRetries", 0, retries),
                         _integer(raw, "numMinDelayRetries", 0, retries),
                         _integer(raw, "numMaxDelayRetries", 0, retries),
                         raw.get("backoffFunction", DEFAULT["backoffFunction"]))
    if policy.function not in FUNCTIONS:
        raise DeliveryPolicyError(f"backoffFunction must be one of {', '.join(FUNCTIONS)}")
    if policy.no_delay + policy.min_delay + policy.max_delay > retries:
        raise DeliveryPolicyError("numNoDelayRetries + numMinDelayRetries + numMaxDelayRetries must "
                                  "not exceed numRetries")
    return policy
