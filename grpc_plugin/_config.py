"""The options of `GrpcBrokerGateway`: each field declares its type, bounds and help once.

`GatewayConfig(...)` checks every field (also when built directly), so a bad value fails here with
`InvalidRequestError` naming the option, never later inside gRPC. The token is a `Secret`, which
never shows itself. `OPTIONS` is what the plugin declares to hosts (`brokerctl` builds its flags
from it).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import attrs

from broker_plugins import (
    CATEGORIES,
    Backoff,
    GatewayOption,
    InvalidRequestError,
    Limiter,
    RateLimit,
    RateLimiter,
    RateLimitsSpec,
)

__all__ = ["DEFAULT_TIMEOUTS", "OPTIONS", "GatewayConfig", "Secret"]

DEFAULT_TIMEOUTS: Mapping[str, float] = MappingProxyType(
    {"market_data": 5.0, "trading": 10.0, "account": 5.0}
)
"""Deadline of one call, by category, in seconds."""

DEFAULT_RATE_LIMITS = (RateLimit(20, 1.0),)
DEFAULT_BACKOFF = Backoff(initial=0.1, maximum=0.3)
"""Reconnect quickly after a bridge restart: the first retry after 0.1 s, never more than 1 s apart."""

_TARGET = re.compile(r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]{1,253}):\d{1,5}|unix:[^\s]{1,200}")
# What an HTTP/2 header value may hold, without spaces: a bearer token is visible ASCII.
_TOKEN = re.compile(r"[\x21-\x7e]{1,4096}")
_MAX_MESSAGE = 2**31 - 1  # gRPC takes message sizes as a C int


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


_Check = Callable[[Any, "attrs.Attribute[Any]", Any], None]


def _rule(test: Callable[[Any], str | None]) -> _Check:
    """A validator from `test`, which says what is wrong with a value (or None); errors name the option."""

    def validate(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
        problem = test(value)
        if problem is not None:
            raise InvalidRequestError(f"option {attribute.name!r} {problem}")

    return validate


def _seconds(low: float, high: float, *, optional: bool = False) -> _Check:
    def test(value: object) -> str | None:
        if value is None and optional:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
            return f"must be a number of seconds from {low:g} to {high:g}, got {_shown(value)}"
        return None

    return _rule(test)


def _target(value: object) -> str | None:
    if not isinstance(value, str) or _TARGET.fullmatch(value) is None:
        return f"must look like 'host:port', got {_shown(value)}"
    port = value.rpartition(":")[2]
    if not value.startswith("unix:") and not 0 < int(port) < 65536:
        return f"has port {port}, which is not from 1 to 65535"
    return None


def _secret(value: object) -> str | None:
    if value is None or isinstance(value, Secret):
        return None
    return f"must be a Secret, got {type(value).__name__}"


def _optional(kind: type | tuple[type, ...], what: str) -> _Check:
    def test(value: object) -> str | None:
        return None if value is None or isinstance(value, kind) else f"must be {what}, got {_shown(value)}"

    return _rule(test)


def _server_name(value: object) -> str | None:
    if value is None or (isinstance(value, str) and 0 < len(value) <= 253):
        return None
    return f"must be a name of 1-253 characters, got {_shown(value)}"


def _rate_limiter(value: object) -> str | None:
    if value is None or isinstance(value, Limiter):
        return None
    return f"must have acquire(category) and note_refusal(...), got {type(value).__name__}"


def _timeouts(value: object) -> str | None:
    if not isinstance(value, Mapping) or set(value) != set(CATEGORIES):
        return f"must map each of {', '.join(CATEGORIES)} to seconds, got {_shown(value)}"
    for category, seconds in value.items():
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not 0.001 <= seconds <= 3600:
            return f"must give {category} a number of seconds from 0.001 to 3600, got {_shown(seconds)}"
    return None


def _backoff(value: object) -> str | None:
    if not isinstance(value, Backoff):
        return f"must be a Backoff, got {_shown(value)}"
    if value.maximum > 3600:
        return f"must wait at most 3600 s between attempts, got maximum={value.maximum:g}"
    return None


def _message_size(value: object) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int) or not 1024 <= value <= _MAX_MESSAGE:
        return f"must be a whole number of bytes from 1024 to {_MAX_MESSAGE}, got {_shown(value)}"
    return None


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:37]}..."


def _field(check: _Check, default: object, help: str = "", **declared: Any) -> Any:
    """A config field: `check` validates it (also when built directly); `declared` goes to `OPTIONS`."""
    return attrs.field(default=default, validator=check, metadata={"help": help, **declared})


_PEM = _optional(bytes, "PEM bytes")
_FLAG = _rule(
    lambda value: None if isinstance(value, bool) else f"must be True or False, got {_shown(value)}"
)


@attrs.frozen(kw_only=True)
class GatewayConfig:
    """Everything `GrpcBrokerGateway` is configured with; `from_options` builds it from what hosts pass."""

    target: str = attrs.field(
        validator=_rule(_target),
        metadata={"help": "bridge address, host:port", "required": True, "metavar": "HOST:PORT"},
    )
    token: Secret | None = _field(_rule(_secret), None, "bearer token the bridge expects", secret=True)
    tls: bool = _field(_FLAG, False, "use TLS with the system's root certificates", kind=bool)
    root_certificates: bytes | None = _field(
        _PEM, None, "trust this CA (PEM file; implies TLS)", kind=Path, flag="--ca-cert", metavar="PEM"
    )
    client_certificate: bytes | None = _field(
        _PEM,
        None,
        "client certificate (PEM file; mutual TLS)",
        kind=Path,
        flag="--client-cert",
        metavar="PEM",
    )
    client_key: bytes | None = attrs.field(
        default=None,
        validator=_PEM,
        repr=False,
        metadata={
            "help": "client private key (PEM file)",
            "kind": Path,
            "flag": "--client-key",
            "metavar": "PEM",
        },
    )
    server_name_override: str | None = _field(
        _rule(_server_name), None, "expected TLS server name", flag="--server-name", metavar="NAME"
    )
    rate_limits: RateLimitsSpec | None = _field(_optional(object, "rate limits"), None)
    rate_limiter: Limiter | None = _field(_rule(_rate_limiter), None)
    rate_limit_margin: float = _field(_seconds(0, 10), 0.01)
    """Seconds added to every rate-limit window: calls granted a permit together can reach the bridge
    a few milliseconds apart, and the bridge counts arrivals, not permits."""
    timeouts: Mapping[str, float] = _field(
        _rule(_timeouts),
        DEFAULT_TIMEOUTS,
        "deadline of each call, seconds",
        kind=float,
        metavar="SECONDS",
        flag="--timeout",
    )
    unavailable_timeout: float = _field(
        _seconds(0.01, 600),
        1.0,
        "seconds a call waits for an unreachable bridge",
        kind=float,
        metavar="SECONDS",
    )
    connect_timeout: float = _field(
        _seconds(0.01, 600), 5.0, "seconds connect() may take", kind=float, metavar="SECONDS"
    )
    keepalive_time: float = _field(_seconds(1, 86400), 300.0)
    keepalive_timeout: float = _field(_seconds(0.1, 600), 20.0)
    health_check_interval: float | None = _field(
        _seconds(0.01, 86400, optional=True),
        10.0,
        "seconds between probes of a quiet link",
        kind=float,
        metavar="SECONDS",
    )
    health_check_timeout: float = _field(_seconds(0.01, 600), 1.0)
    stream_stale_after: float | None = _field(_seconds(0.01, 86400, optional=True), None)
    quote_stale_after: float | None = _field(_seconds(0.01, 86400, optional=True), 120.0)
    reconnect_backoff: Backoff = _field(_rule(_backoff), DEFAULT_BACKOFF)
    max_message_size: int = _field(_rule(_message_size), 64 * 1024 * 1024)

    _limiter: Limiter = attrs.field(init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        if (self.client_certificate is None) != (self.client_key is None):
            raise InvalidRequestError(
                "options 'client_certificate' and 'client_key' go together (mutual TLS)"
            )
        if self.rate_limits is not None and self.rate_limiter is not None:
            raise InvalidRequestError("give rate_limits or rate_limiter, not both")
        # Parsed once, here: a bad spec fails now, naming what is wrong with it.
        limiter = self.rate_limiter or RateLimiter(
            DEFAULT_RATE_LIMITS if self.rate_limits is None else self.rate_limits,
            margin=self.rate_limit_margin,
        )
        object.__setattr__(self, "_limiter", limiter)

    @property
    def limiter(self) -> Limiter:
        """The limiter every request takes its permit from: `rate_limiter`, or one of `rate_limits`."""
        return self._limiter

    @property
    def secure(self) -> bool:
        """Whether the channel uses TLS."""
        return self.tls or self.root_certificates is not None or self.client_certificate is not None

    @property
    def secret(self) -> str | None:
        """The token itself, for the places that must keep it out of error messages."""
        return None if self.token is None else self.token.reveal()

    @property
    def metadata(self) -> tuple[tuple[str, str], ...] | None:
        """Metadata every call carries: the bearer token, when there is one."""
        # None rather than an empty tuple: gRPC does measurably more work per call for an empty one.
        return None if self.token is None else (("authorization", f"Bearer {self.token.reveal()}"),)

    @property
    def half_open_bound(self) -> float:
        """Seconds within which a silent (black-holed) connection is noticed."""
        if self.health_check_interval is None:
            return self.keepalive_time + self.keepalive_timeout
        # A quiet interval, then two probes in a row unanswered (one alone may be a busy bridge).
        return self.health_check_interval + 2 * self.health_check_timeout

    @classmethod
    def from_options(cls, **options: Any) -> GatewayConfig:
        """Check `options` and build a config; raises `InvalidRequestError` naming a bad option.

        Beyond the field types it takes what hosts pass: the token as text, certificates as file
        paths, `timeouts` as one number of seconds or a partial mapping by category.
        """
        known = {field.name for field in attrs.fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise InvalidRequestError(
                f"unknown option {_shown(unknown[0])} for the grpc gateway; known options: "
                f"{', '.join(sorted(known))}"
            )
        if "target" not in options:
            raise InvalidRequestError("option 'target' is required, for example target='127.0.0.1:50051'")
        given = dict(options)
        if isinstance(given.get("token"), str):
            given["token"] = _token(given["token"])
        for name in ("root_certificates", "client_certificate", "client_key"):
            if isinstance(given.get(name), str | Path):
                given[name] = _read_pem(name, given[name])
        if "timeouts" in given:
            given["timeouts"] = _merged_timeouts(given["timeouts"])
        return cls(**given)


def _token(value: str) -> Secret:
    if _TOKEN.fullmatch(value) is None:
        # Never echoed: even a malformed token may be most of the real one.
        raise InvalidRequestError(
            "option 'token' must be 1-4096 visible ASCII characters (no spaces, line breaks or "
            "control characters)"
        )
    return Secret(value)


def _read_pem(name: str, path: str | Path) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise InvalidRequestError(f"option {name!r}: cannot read {str(path)!r}: {exc.strerror}") from None


def _merged_timeouts(value: object) -> object:
    if isinstance(value, Mapping):
        unknown = sorted(str(key) for key in value if key not in CATEGORIES)
        if unknown:
            raise InvalidRequestError(
                f"option 'timeouts': unknown category {unknown[0]!r}; use one of {', '.join(CATEGORIES)}"
            )
        return MappingProxyType({**DEFAULT_TIMEOUTS, **value})
    return MappingProxyType(dict.fromkeys(CATEGORIES, value))


def _declared() -> tuple[GatewayOption, ...]:
    declared = []
    for field in attrs.fields(GatewayConfig):
        if not field.metadata.get("help"):
            continue  # options for programs, not for a command line
        extra = {
            key: field.metadata[key]
            for key in ("kind", "flag", "metavar", "secret", "required")
            if key in field.metadata
        }
        declared.append(GatewayOption(field.name, help=field.metadata["help"], **extra))
    return tuple(declared)


OPTIONS = _declared()
"""The options a host can set from text (`brokerctl` flags, its TOML file), as the plugin declares them."""
