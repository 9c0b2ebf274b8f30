"""`RateLimit` and the ways to give a limiter its limits (`RateLimitsSpec`), checked at the boundary."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import attrs

from broker_plugins._errors import InvalidRequestError

__all__ = [
    "CATEGORIES",
    "SHARED",
    "RateLimit",
    "RateLimitsSpec",
    "check_margin",
    "describe",
    "parse_spec",
    "unknown_category",
]

CATEGORIES = ("market_data", "trading", "account")
"""The categories a gateway takes permits in: quotes and candles, orders, positions and balance."""

SHARED = "*"
"""The key of a budget every category shares on top of its own."""


def _check_max_calls(_instance: object, _attribute: attrs.Attribute[int], value: int) -> None:
    # Typed as int for checkers; callers passing config values may still hand over anything.
    candidate: object = value
    if isinstance(candidate, bool) or not isinstance(candidate, int) or candidate < 1:
        raise InvalidRequestError(f"RateLimit max_calls must be a whole number >= 1, got {value!r}")


def _to_period(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidRequestError(f"RateLimit period must be a number of seconds, got {value!r}")
    period = float(value)
    if not math.isfinite(period) or period <= 0:
        raise InvalidRequestError(f"RateLimit period must be positive and finite (seconds), got {value!r}")
    return period


def _check_paced(_instance: object, _attribute: attrs.Attribute[bool], value: bool) -> None:
    candidate: object = value
    if not isinstance(candidate, bool):
        raise InvalidRequestError(f"RateLimit paced must be True or False, got {value!r}")


@attrs.frozen
class RateLimit:
    """At most `max_calls` calls in any window of `period` seconds.

    `paced=True` also spaces the calls evenly, one every `period / max_calls` seconds, for brokers
    that punish bursts within the limit (see `broker_plugins._pacing`).
    """

    max_calls: int = attrs.field(validator=_check_max_calls)
    period: float = attrs.field(converter=_to_period)
    paced: bool = attrs.field(default=False, kw_only=True, validator=_check_paced)

    def __str__(self) -> str:
        return f"{self.max_calls} per {self.period:g}s{', paced' if self.paced else ''}"


RateLimitsSpec = RateLimit | Iterable[RateLimit] | Mapping[str, "RateLimit | Iterable[RateLimit]"]
"""One limit or several (shared by every call), or a mapping from category to its limits; the key
`"*"` in a mapping is a budget every category shares on top of its own."""


def _as_limits(value: object, where: str) -> tuple[RateLimit, ...]:
    if isinstance(value, RateLimit):
        return (value,)
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise InvalidRequestError(f"{where} must be a RateLimit or a list of them, got {value!r}")
    limits = tuple(value)
    for limit in limits:
        if not isinstance(limit, RateLimit):
            raise InvalidRequestError(f"{where} must hold RateLimit objects, got {limit!r}")
    return limits


def parse_spec(spec: object) -> dict[str, tuple[RateLimit, ...]]:
    """The limits of `spec` by key (a category or `"*"`); `InvalidRequestError` says what is wrong."""
    if not isinstance(spec, Mapping):
        return {SHARED: _as_limits(spec, "rate limits")}
    parsed: dict[str, tuple[RateLimit, ...]] = {}
    for key, value in spec.items():
        if key != SHARED and key not in CATEGORIES:
            allowed = ", ".join((*CATEGORIES, SHARED))
            raise InvalidRequestError(f"unknown rate-limit category {key!r}; use one of {allowed}")
        parsed[key] = _as_limits(value, f"rate limits for {key!r}")
    return parsed


def check_margin(margin: object) -> float:
    """`margin` as seconds, or `InvalidRequestError`."""
    if isinstance(margin, bool) or not isinstance(margin, int | float) or not 0 <= margin < math.inf:
        raise InvalidRequestError(f"rate-limit margin must be a finite number >= 0, got {margin!r}")
    return float(margin)


def unknown_category(category: str) -> InvalidRequestError:
    """The error for a permit asked in a category no gateway uses."""
    return InvalidRequestError(
        f"unknown rate-limit category {category!r}; use one of {', '.join(CATEGORIES)}"
    )


def describe(limits: Mapping[str, tuple[RateLimit, ...]]) -> str:
    """`market_data: 20 per 1s; shared: 25 per 1s`, or `unlimited`."""
    parts = [
        f"{'shared' if key == SHARED else key}: {', '.join(map(str, found))}"
        for key, found in limits.items()
        if found
    ]
    return "; ".join(parts) or "unlimited"
