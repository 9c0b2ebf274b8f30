"""The Redis side of `RedisRateLimiter`: one asyncio client (a connection pool), the scripts registered
on it, and whether Redis can be reached. redis-py is imported here, and only when first used.

The URL may carry a password: it is kept here and shown nowhere; `location` is what may be shown.
"""

from __future__ import annotations

import importlib.util
import logging
import urllib.parse
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from broker_plugins import _redis_scripts as lua
from broker_plugins._errors import InvalidRequestError, SharedBudgetUnavailableError

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.commands.core import AsyncScript

__all__ = ["RedisStore", "location"]

_log = logging.getLogger("broker_plugins.ratelimit")

_SCRIPTS = {
    "decide": lua.DECIDE,
    "recover": lua.RECOVER,
    "leave": lua.LEAVE,
    "refund": lua.REFUND,
    "refuse": lua.REFUSE,
}


class RedisStore:
    """Runs the limiter's scripts on one Redis; a failure to reach it is a `SharedBudgetUnavailableError`."""

    def __init__(self, url: str, *, password: str | None, timeout: float, name: str) -> None:
        self.location = location(url)
        if password is not None and (not isinstance(password, str) or not password):
            raise InvalidRequestError("password must be a non-empty string")
        if importlib.util.find_spec("redis") is None:
            raise SharedBudgetUnavailableError(
                "RedisRateLimiter needs redis-py: pip install 'broker-plugins[redis]'"
            )
        self._url = url
        self._password = password
        self._timeout = timeout
        self._name = name  # what the store holds, for messages: "shared rate budget 'acct'"
        self._client: Redis | None = None
        self._scripts: dict[str, AsyncScript] = {}
        self._failures: tuple[type[BaseException], ...] = (OSError,)
        self.reachable = True
        self.error: str | None = None
        """Why Redis could not be reached, while it cannot."""

    @property
    def connected(self) -> bool:
        """Whether a client (and its pool) exists."""
        return self._client is not None

    async def run(self, script: str, keys: Sequence[str], args: Sequence[str]) -> Any:
        """One call of `script` (one round trip, unless Redis lost the script and it is loaded again)."""
        scripts = self._connect()
        try:
            reply = await scripts[script](keys=keys, args=args)
        except self._failures as error:
            raise self._unreachable(error) from None
        if not self.reachable:
            _log.info("%s at %s is reachable again", self._name, self.location)
        self.reachable, self.error = True, None
        return reply

    async def aclose(self) -> None:
        """Close the client and its connections; the next `run` opens new ones."""
        if self._client is not None:
            client, self._client = self._client, None
            self._scripts = {}
            await client.aclose()

    def _connect(self) -> dict[str, AsyncScript]:
        if self._client is None:
            import redis.asyncio  # noqa: PLC0415 - the optional extra, imported only when used
            from redis.asyncio.retry import Retry  # noqa: PLC0415
            from redis.backoff import NoBackoff  # noqa: PLC0415
            from redis.exceptions import RedisError  # noqa: PLC0415

            options: dict[str, Any] = {} if self._password is None else {"password": self._password}
            self._client = redis.asyncio.Redis.from_url(
                self._url,
                socket_timeout=self._timeout,
                socket_connect_timeout=self._timeout,
                # One retry, on a fresh connection: a pooled one may have died with a restarted Redis.
                retry=Retry(NoBackoff(), 1),
                decode_responses=True,
                **options,
            )
            self._scripts = {name: self._client.register_script(source) for name, source in _SCRIPTS.items()}
            self._failures = (RedisError, OSError)
        return self._scripts

    def _unreachable(self, error: BaseException) -> SharedBudgetUnavailableError:
        reason = self._scrub(f"{type(error).__name__}: {error}")
        if self.reachable:
            _log.warning(
                "%s at %s is unreachable (%s): calls fail until it is back", self._name, self.location, reason
            )
        self.reachable, self.error = False, reason
        return SharedBudgetUnavailableError(
            f"the {self._name} at {self.location} is unreachable ({reason}); no permit was granted"
        )

    def _scrub(self, text: str) -> str:
        for secret in (self._password, urllib.parse.urlsplit(self._url).password):
            if secret:
                text = text.replace(secret, "***")
        return text


def location(url: object) -> str:
    """Where `url` points, without credentials or options: safe for reprs, logs and errors."""
    if not isinstance(url, str):
        raise InvalidRequestError("the Redis URL must be a string")
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "unix" and parts.path:
        return f"unix://{parts.path}"
    try:
        port = parts.port
    except ValueError:
        # Not echoed, here or below: a malformed URL may still carry a password.
        raise InvalidRequestError("the Redis URL has a port that is not a number") from None
    if parts.scheme not in ("redis", "rediss") or not parts.hostname:
        raise InvalidRequestError(
            "the Redis URL must look like redis://host:port/db, rediss://... or unix:///path"
        )
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{parts.scheme}://{host}{f':{port}' if port else ''}{parts.path}"
