"""`Limiter`: what a gateway needs from a rate limiter, so that any limiter can be injected.

A gateway calls `acquire(category)` right before each request it sends to the broker (every page of
a paged read, every retry, every stream (re)opening), after it has checked that the link is up, and
sends the request as soon as `acquire` returns. When the broker refuses a request as over budget it
calls `note_refusal(category, retry_after)`, so that every gateway sharing the limiter holds back.

The in-process `RateLimiter` is the default; a limiter shared across processes implements the same
two methods.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

__all__ = ["Limiter"]


@runtime_checkable
class Limiter(Protocol):
    """Grants permits per rate-limit category (`market_data`, `trading`, `account`)."""

    async def acquire(self, category: str) -> None:
        """Wait until one request in `category` may go out now, and take its permit.

        A waiter cancelled while waiting takes nothing. Raises `InvalidRequestError` for an unknown
        category, and a `BrokerError` when no permit can be had (a shared limiter whose store is
        unreachable, for example).
        """
        ...

    def note_refusal(self, category: str, retry_after: float | None) -> None:
        """The broker refused a request in `category` as over budget, asking to wait `retry_after` s."""
        ...
