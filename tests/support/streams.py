"""Ending a gateway stream in a test, whatever iterator the gateway returned."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any


async def aclose(stream: AsyncIterator[Any]) -> None:
    """End `stream` now (an async generator's `aclose`), rather than when it is collected."""
    close = getattr(stream, "aclose", None)
    if close is not None:
        await close()
