"""The options of `GrpcBrokerGateway`, checked once, with the token kept out of every repr."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import attrs

from broker_plugins import CATEGORIES, Backoff, InvalidRequestError, RateLimit, RateLimiter, RateLimitsSpec

__all__ = ["DEFAULT_TIMEOUTS", "GatewayConfig", "Secret"]

DEFAULT_TIMEOUTS: Mapping[str, float] = MappingProxyType(
    {"market_data": 5.0, "trading": 10.0, "account": 5.0}
)
"""Deadline of one call, by category, in seconds."""

DEFAULT_BACKOFF = Backoff(initial=0.1, maximum=1.0)
"""Reconnect quickly after a bridge restart: the first retry after 0.1 s, never more than 1 s apart."""

_TARGET = re.compile(r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):\d{1,5}|unix:[^\s]+")


@attrs.frozen(repr=False)
class Secret:
    """A credential that never shows itself in a repr, a log line or an error message."""

    _value: str

    def reveal(self) -> str:
        """The credential itself, for the one place that sends it."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__


def _seconds(name: str, value: object, *, allow_none: bool = False) -> float | None:
    if value is None and allow_none:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise InvalidRequestError(f"option {name!r} must be a positive number of seconds, got {value!r}")
    return float(value)


def _pem(name: str, value: object) -> bytes | None:
    """PEM data given as bytes, or as a path to a file holding it."""
    if value is None or isinstance(value, bytes):
        return value
    if isinstance(value, str | Path):
        try:
            return Path(value).read_bytes()
        except OSError as exc:
            raise InvalidRequestError(
                f"option {name!r}: cannot read {str(value)!r}: {exc.strerror}"
            ) from None
    raise InvalidRequestError(f"option {name!r} must be PEM bytes or a file path, got {type(value).__name__}")


@attrs.frozen(kw_only=True)
class GatewayConfig:
    """Everything `GrpcBrokerGateway` is configured with; built by `from_options`."""

    target: str
    token: Secret | None = None
    root_certificates: bytes | None = None
    client_certificate: bytes | None = None
    client_key: bytes | None = attrs.field(default=None, repr=False)
    server_name_override: str | None = None
    tls: bool = False
    rate_limits: RateLimitsSpec = (RateLimit(20, 1.0),)
    rate_limit_margin: float = 0.01
    """Seconds added to every rate-limit window: calls granted a permit together can reach the bridge
    a few milliseconds apart, and the bridge counts arrivals, not permits."""
    timeouts: Mapping[str, float] = DEFAULT_TIMEOUTS
    unavailable_timeout: float = 1.0
    connect_timeout: float = 5.0
    keepalive_time: float = 2.0
    keepalive_timeout: float = 1.0
    health_check_interval: float = 1.0
    stream_stale_after: float | None = None
    reconnect_backoff: Backoff = DEFAULT_BACKOFF
    max_message_size: int = 64 * 1024 * 1024

    @property
    def secure(self) -> bool:
        """Whether the channel uses TLS."""
        return self.tls or self.root_certificates is not None or self.client_certificate is not None

    def new_rate_limiter(self) -> RateLimiter:
        """A limiter with this config's limits (one per gateway: limiters bind to a loop)."""
        return RateLimiter(self.rate_limits, margin=self.rate_limit_margin)

    @classmethod
    def from_options(cls, **options: Any) -> GatewayConfig:
        """Check `options` and build a config; raises `InvalidRequestError` naming a bad option."""
        known = {field.name for field in attrs.fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            known_options = ", ".join(sorted(known))
            raise InvalidRequestError(
                f"unknown option {unknown[0]!r} for the grpc gateway; known options: {known_options}"
            )
        if "target" not in options:
            raise InvalidRequestError("option 'target' is required, for example target='127.0.0.1:50051'")
        return cls(**_checked(options))


def _checked(options: dict[str, Any]) -> dict[str, Any]:  # noqa: PLR0912 - one branch per option
    checked: dict[str, Any] = {}
    for name, value in options.items():
        if name == "target":
            if not isinstance(value, str) or _TARGET.fullmatch(value) is None:
                raise InvalidRequestError(f"option 'target' must look like 'host:port', got {value!r}")
            checked[name] = value
        elif name == "token":
            if value is not None and (
                not isinstance(value, str | Secret) or not str(value) or "\n" in str(value)
            ):
                raise InvalidRequestError("option 'token' must be a non-empty, single-line string")
            checked[name] = Secret(value) if isinstance(value, str) else value
        elif name in {"root_certificates", "client_certificate", "client_key"}:
            checked[name] = _pem(name, value)
        elif name == "server_name_override":
            if value is not None and not isinstance(value, str):
                raise InvalidRequestError(f"option 'server_name_override' must be a string, got {value!r}")
            checked[name] = value
        elif name == "tls":
            if not isinstance(value, bool):
                raise InvalidRequestError(f"option 'tls' must be True or False, got {value!r}")
            checked[name] = value
        elif name == "rate_limits":
            RateLimiter(value)  # raises InvalidRequestError saying what is wrong with the spec
            checked[name] = value
        elif name == "timeouts":
            checked[name] = _timeouts(value)
        elif name == "stream_stale_after":
            checked[name] = _seconds(name, value, allow_none=True)
        elif name == "reconnect_backoff":
            if not isinstance(value, Backoff):
                raise InvalidRequestError(f"option 'reconnect_backoff' must be a Backoff, got {value!r}")
            checked[name] = value
        elif name == "max_message_size":
            if isinstance(value, bool) or not isinstance(value, int) or value < 1024:
                raise InvalidRequestError(
                    f"option 'max_message_size' must be a whole number >= 1024, got {value!r}"
                )
            checked[name] = value
        elif name == "rate_limit_margin":
            if value != 0:
                _seconds(name, value)
            checked[name] = float(value)
        else:
            checked[name] = _seconds(name, value)
    if (checked.get("client_certificate") is None) != (checked.get("client_key") is None):
        raise InvalidRequestError("options 'client_certificate' and 'client_key' go together (mutual TLS)")
    return checked


def _timeouts(value: object) -> Mapping[str, float]:
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = _seconds("timeouts", value)
        assert seconds is not None
        return MappingProxyType(dict.fromkeys(CATEGORIES, seconds))
    if not isinstance(value, Mapping):
        raise InvalidRequestError(
            f"option 'timeouts' must be seconds or a mapping by category, got {value!r}"
        )
    merged = dict(DEFAULT_TIMEOUTS)
    for category, seconds in value.items():
        if category not in CATEGORIES:
            raise InvalidRequestError(
                f"option 'timeouts': unknown category {category!r}; use one of {', '.join(CATEGORIES)}"
            )
        checked = _seconds(f"timeouts[{category!r}]", seconds)
        assert checked is not None
        merged[category] = checked
    return MappingProxyType(merged)
