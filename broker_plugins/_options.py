"""`GatewayOption`: an option a gateway factory takes, as its plugin declares it to hosts.

A host that configures gateways from text (`brokerctl`'s flags and its TOML file of connections)
builds its inputs from these declarations, so the core names no plugin's option. Options that are
only for programs (a limiter object, a backoff policy) are simply not declared.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import attrs

from broker_plugins._errors import InvalidRequestError

__all__ = ["GatewayOption"]

_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")
_FLAG = re.compile(r"--[a-z][a-z0-9-]{0,63}")
_KINDS = (str, int, float, bool, Path)


def _check_name(_instance: object, _attribute: object, value: str) -> None:
    if not isinstance(value, str) or _NAME.fullmatch(value) is None:
        raise InvalidRequestError(f"option name {value!r} is malformed: use lowercase letters, digits and _")


def _check_kind(_instance: object, _attribute: object, value: type) -> None:
    if value not in _KINDS:
        raise InvalidRequestError(f"option kind must be one of str, int, float, bool, Path; got {value!r}")


def _check_flag(_instance: object, _attribute: object, value: str | None) -> None:
    if value is not None and (not isinstance(value, str) or _FLAG.fullmatch(value) is None):
        raise InvalidRequestError(f"option flag {value!r} is malformed: use --lowercase-words")


@attrs.frozen
class GatewayOption:
    """One keyword option of a gateway factory: its name, type and help, and whether it is a secret.

    `kind` is what the factory takes: `str`, `int`, `float`, `bool` (a switch) or `pathlib.Path` (a
    file, passed to the factory as its path). A `secret` (a key, a password) is never printed, and
    `brokerctl` also reads it from the environment variable `BROKERCTL_<NAME>`.
    """

    name: str = attrs.field(validator=_check_name)
    help: str = attrs.field(default="", kw_only=True)
    kind: type = attrs.field(default=str, kw_only=True, validator=_check_kind)
    secret: bool = attrs.field(default=False, kw_only=True)
    required: bool = attrs.field(default=False, kw_only=True)
    flag: str | None = attrs.field(default=None, kw_only=True, validator=_check_flag)
    """The command-line flag; `--` and the name with dashes when not given."""
    metavar: str | None = attrs.field(default=None, kw_only=True)

    @property
    def cli_flag(self) -> str:
        """The flag a command line spells this option with."""
        return self.flag or f"--{self.name.replace('_', '-')}"

    @property
    def environment_variable(self) -> str:
        """Where a host may read a secret from instead of a flag (`BROKERCTL_API_KEY` for `api_key`)."""
        return f"BROKERCTL_{self.name.upper()}"

    def convert(self, value: object) -> object:
        """`value` (text from a command line, or a TOML value) as the factory takes it.

        Raises `InvalidRequestError` naming the option when it is not of the declared kind.
        """
        try:
            return self._convert(value)
        except (TypeError, ValueError):
            shown = "***" if self.secret else repr(value)
            raise InvalidRequestError(
                f"option {self.name!r} must be {self._kind_name()}, got {shown}"
            ) from None

    def _convert(self, value: object) -> object:
        if self.kind is bool:
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in {"true", "false", "yes", "no", "1", "0"}:
                return value.lower() in {"true", "yes", "1"}
            raise ValueError(value)
        if isinstance(value, bool):
            raise TypeError(value)
        if self.kind is int:
            if isinstance(value, int) or (isinstance(value, str) and value.strip().lstrip("-").isdigit()):
                return int(value)
            raise ValueError(value)
        if self.kind is float:
            if not isinstance(value, int | float | str):
                raise TypeError(value)
            number = float(value)
            if not math.isfinite(number):
                raise ValueError(value)
            return number
        if not isinstance(value, str | Path) or not str(value):
            raise TypeError(value)
        return str(value)

    def _kind_name(self) -> str:
        names = {
            str: "text",
            int: "a whole number",
            float: "a number",
            bool: "true or false",
            Path: "a file path",
        }
        return names[self.kind]
