"""`Backoff`: how long to wait before the next reconnect attempt."""

from __future__ import annotations

import math
import random

import attrs

from broker_plugins._errors import InvalidRequestError

__all__ = ["Backoff"]


def _non_negative(_instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    number: object = value  # typed float for checkers; configs may still hand over anything
    if (
        isinstance(number, bool)
        or not isinstance(number, int | float)
        or not math.isfinite(number)
        or number < 0
    ):
        raise InvalidRequestError(f"Backoff {attribute.name} must be a finite number >= 0, got {value!r}")


@attrs.frozen
class Backoff:
    """Exponential, jittered, capped delays: attempt n waits about `initial * multiplier**n`,
    never more than `maximum`, less a random share of up to `jitter` of it.

    Jitter spreads the reconnects of many clients after one outage, so they do not arrive together.
    """

    initial: float = attrs.field(default=0.1, validator=_non_negative)
    maximum: float = attrs.field(default=2.0, validator=_non_negative)
    multiplier: float = attrs.field(default=2.0, validator=_non_negative)
    jitter: float = attrs.field(default=0.2, validator=_non_negative)

    def __attrs_post_init__(self) -> None:
        if self.maximum < self.initial:
            raise InvalidRequestError(
                f"Backoff maximum ({self.maximum}) must not be below initial ({self.initial})"
            )
        if self.multiplier < 1:
            raise InvalidRequestError(f"Backoff multiplier must be >= 1, got {self.multiplier}")
        if self.jitter > 1:
            raise InvalidRequestError(f"Backoff jitter must be between 0 and 1, got {self.jitter}")

    def delay(self, attempt: int, *, rng: random.Random | None = None) -> float:
        """Seconds to wait before attempt number `attempt` (0 for the first retry)."""
        exponent = min(max(attempt, 0), 64)  # 2.0**64 is plenty; beyond it only overflow waits
        base = min(self.maximum, self.initial * self.multiplier**exponent)
        share = (rng or random).random() * self.jitter
        return base * (1.0 - share)
