"""Bearer tokens: which account a call acts for, read from its `authorization` metadata.

Tokens are compared in constant time against every known token, so the time a refusal takes
tells nothing about which prefix matched. Nothing here ever puts a token into a message or a log.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Mapping

__all__ = ["DEFAULT_ACCOUNT", "Metadata", "TokenCheck"]

DEFAULT_ACCOUNT = "paper"  # the account of every call when the bridge has no tokens

Metadata = Iterable[tuple[str, str | bytes]]


class TokenCheck:
    """The bridge's tokens and the accounts they stand for; empty: no authentication."""

    def __init__(self, tokens: Mapping[str, str]) -> None:
        self._tokens = {token.encode(): account for token, account in tokens.items()}

    @property
    def required(self) -> bool:
        """True when calls must carry a token."""
        return bool(self._tokens)

    def account(self, metadata: Metadata | None) -> str | None:
        """The account of a call, or None if its token is missing or wrong."""
        if not self._tokens:
            return DEFAULT_ACCOUNT
        header = _authorization(metadata)
        scheme, _, token = (header or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        presented = token.strip().encode()
        account = None
        for known, name in self._tokens.items():
            if hmac.compare_digest(known, presented):
                account = name
        return account

    def refuses(self, metadata: Metadata | None) -> bool:
        """True when a call presents credentials and they are wrong (health: a missing token is let
        through, for load balancers that probe without one)."""
        return self.required and _authorization(metadata) is not None and self.account(metadata) is None


def _authorization(metadata: Metadata | None) -> str | None:
    header = None
    for key, value in metadata or ():
        if key == "authorization":
            header = value if isinstance(value, str) else value.decode("latin-1")
    return header
