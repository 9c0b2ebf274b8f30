"""What the kit is told on the command line: where the bridge is, how to reach it, what it may do.

Plain data, importable without gRPC (the pytest plugin reads it in every pytest run).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import attrs

__all__ = ["DEFAULT_TOKEN_ENV", "BridgeSettings", "Budget", "SettingsError"]

DEFAULT_TOKEN_ENV = "BROKER_BRIDGE_TOKEN"  # noqa: S105 - the name of a variable, not a token
_BUDGET = re.compile(r"(\d+)/(\d+(?:\.\d+)?)")


class SettingsError(ValueError):
    """The kit's options are contradictory or name something that is not there."""


@attrs.frozen
class Budget:
    """The account's tightest budget window: at most `calls` in any `period` seconds."""

    calls: int
    period: float

    @classmethod
    def parse(cls, text: str) -> Budget:
        """`20/1` -> Budget(20, 1.0)."""
        match = _BUDGET.fullmatch(text.strip())
        if match is None or int(match[1]) < 1 or float(match[2]) <= 0:
            raise SettingsError(f"--bridge-budget expects CALLS/SECONDS such as 20/1, got {text!r}")
        return cls(int(match[1]), float(match[2]))

    def __str__(self) -> str:
        return f"{self.calls}/{self.period:g}s"


@attrs.frozen(kw_only=True)
class BridgeSettings:
    """Everything the kit needs to reach a bridge and decide which clauses may run."""

    target: str
    token: str | None = attrs.field(default=None, repr=False)
    tls_ca: bytes | None = attrs.field(default=None, repr=False)
    tls_cert: bytes | None = attrs.field(default=None, repr=False)
    tls_key: bytes | None = attrs.field(default=None, repr=False)
    tls_server_name: str | None = None
    paper: bool = False
    budget: Budget | None = None
    symbol: str | None = None

    @property
    def tls(self) -> bool:
        """True when the kit talks TLS to the bridge."""
        return self.tls_ca is not None or self.tls_cert is not None

    @classmethod
    def from_options(
        cls,
        *,
        target: str,
        token: str | None = None,
        token_env: str | None = None,
        token_file: str | None = None,
        tls_ca: str | None = None,
        tls_cert: str | None = None,
        tls_key: str | None = None,
        tls_server_name: str | None = None,
        paper: bool = False,
        budget: str | None = None,
        symbol: str | None = None,
    ) -> BridgeSettings:
        """Settings from the command-line options; `SettingsError` says what is wrong."""
        if sum(option is not None for option in (token, token_env, token_file)) > 1:
            raise SettingsError(
                "give the token one way: --bridge-token, --bridge-token-env or --bridge-token-file"
            )
        if (tls_cert is None) != (tls_key is None):
            raise SettingsError("--bridge-tls-cert and --bridge-tls-key go together")
        return cls(
            target=target,
            token=_token(token, token_env, token_file),
            tls_ca=_read(tls_ca, "--bridge-tls-ca"),
            tls_cert=_read(tls_cert, "--bridge-tls-cert"),
            tls_key=_read(tls_key, "--bridge-tls-key"),
            tls_server_name=tls_server_name,
            paper=paper,
            budget=Budget.parse(budget) if budget is not None else None,
            symbol=symbol,
        )


def _token(token: str | None, env: str | None, file: str | None) -> str | None:
    if token is not None:
        return token.strip() or None
    if file is not None:
        found = _read_file(file, "--bridge-token-file").decode("utf-8", errors="replace").strip()
        if not found:
            raise SettingsError(f"--bridge-token-file {file}: the file is empty")
        return found
    if env is not None:
        found = os.environ.get(env, "").strip()
        if not found:
            raise SettingsError(f"--bridge-token-env {env}: the variable is unset or empty")
        return found
    return os.environ.get(DEFAULT_TOKEN_ENV, "").strip() or None


def _read(path: str | None, option: str) -> bytes | None:
    return None if path is None else _read_file(path, option)


def _read_file(path: str, option: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as error:
        raise SettingsError(f"{option} {path}: cannot read it ({error.strerror})") from None
