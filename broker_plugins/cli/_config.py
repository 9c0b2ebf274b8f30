"""Named connections: `brokerctl`'s TOML config file, and the same settings taken from flags.

```toml
default = "paper"                 # used when neither --connection nor --target is given

[connections.paper]
gateway = "grpc"                  # registered gateway name (default "grpc")
target = "bridge.example:50051"
token_env = "PAPER_BRIDGE_TOKEN"  # read the token from this variable (or: token = "...")
tls = true
ca_cert = "certs/ca.pem"          # paths are relative to this file
client_cert = "certs/me.pem"
client_key = "certs/me.key"
server_name = "bridge.internal"
timeout = 5                       # seconds: connect and per-call deadline

[connections.paper.options]       # any other gateway option, passed as is
rate_limit_margin = 0.05
```
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import attrs

from broker_plugins.cli._exit import UsageError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 only
    import tomli as tomllib

__all__ = ["CONFIG_ENV", "TOKEN_ENV", "CliConfig", "ConnectionSettings", "default_config_path", "load_config"]

CONFIG_ENV = "BROKERCTL_CONFIG"
"""Path of the config file, instead of `$XDG_CONFIG_HOME/brokerctl/config.toml`."""
TOKEN_ENV = "BROKERCTL_TOKEN"  # noqa: S105 - the name of a variable, not a secret
"""The bearer token, instead of `--token` (which would show in `ps` and shell history)."""

_TOP_LEVEL = frozenset({"default", "connections"})
_STRINGS = frozenset({"gateway", "target", "token", "token_env", "server_name"})
_PATHS = frozenset({"ca_cert", "client_cert", "client_key"})
_KEYS = _STRINGS | _PATHS | {"tls", "timeout", "options"}


@attrs.frozen(kw_only=True)
class ConnectionSettings:
    """How to reach one broker: a gateway name and what it is configured with."""

    name: str
    gateway: str = "grpc"
    target: str | None = None
    token: str | None = attrs.field(default=None, repr=False)
    token_env: str | None = None
    tls: bool = False
    ca_cert: Path | None = None
    client_cert: Path | None = None
    client_key: Path | None = None
    server_name: str | None = None
    timeout: float | None = None
    options: Mapping[str, Any] = attrs.field(factory=lambda: MappingProxyType({}))

    def resolved_token(self, environ: Mapping[str, str]) -> str | None:
        """The token itself: given directly, or read from the variable `token_env` names."""
        if self.token:
            return self.token
        if self.token_env:
            value = environ.get(self.token_env)
            if not value:
                raise UsageError(
                    f"connection {self.name!r}: environment variable {self.token_env} is not set"
                )
            return value
        return None

    def gateway_options(self, environ: Mapping[str, str]) -> dict[str, Any]:
        """Keyword options for `BrokerRegistry.create(self.gateway, ...)`."""
        options: dict[str, Any] = dict(self.options)
        if self.target is not None:
            options["target"] = self.target
        token = self.resolved_token(environ)
        if token is not None:
            options["token"] = token
        if self.tls:
            options["tls"] = True
        for key, path in (
            ("root_certificates", self.ca_cert),
            ("client_certificate", self.client_cert),
            ("client_key", self.client_key),
        ):
            if path is not None:
                options[key] = str(path)
        if self.server_name is not None:
            options["server_name_override"] = self.server_name
        if self.timeout is not None:
            options["connect_timeout"] = self.timeout
            options["timeouts"] = self.timeout
        return options


@attrs.frozen(kw_only=True)
class CliConfig:
    """The connections of a config file, and which one is the default."""

    path: Path | None = None
    default: str | None = None
    connections: Mapping[str, ConnectionSettings] = attrs.field(factory=lambda: MappingProxyType({}))

    def connection(self, name: str) -> ConnectionSettings:
        """The connection `name`; `UsageError` naming the configured ones if there is none."""
        try:
            return self.connections[name]
        except KeyError:
            known = ", ".join(sorted(self.connections)) or "none"
            where = f" in {self.path}" if self.path else ""
            raise UsageError(f"no connection named {name!r}{where} (configured: {known})") from None

    def default_connection(self) -> ConnectionSettings | None:
        """The connection to use when none is named: `default`, or the only one; None if there is none."""
        if self.default is not None:
            return self.connection(self.default)
        if len(self.connections) == 1:
            return next(iter(self.connections.values()))
        if self.connections:
            raise UsageError(
                f"{self.path} configures {len(self.connections)} connections and no default: "
                'choose one with --connection NAME, or set default = "NAME"'
            )
        return None


def default_config_path(environ: Mapping[str, str]) -> Path:
    """Where the config file is looked for when `--config` is not given."""
    explicit = environ.get(CONFIG_ENV)
    if explicit:
        return Path(explicit)
    base = environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "brokerctl" / "config.toml"


def load_config(path: Path, *, required: bool) -> CliConfig:
    """Read the config at `path`; a missing file is an error only when `required`."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if required:
            raise UsageError(f"config file {path} does not exist") from None
        return CliConfig()
    except OSError as exc:
        raise UsageError(f"cannot read config file {path}: {exc.strerror}") from None
    return parse_config(text, path=path)


def parse_config(text: str, *, path: Path) -> CliConfig:
    """Parse config text; relative paths in it are taken from `path`'s directory."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: not valid TOML: {exc}") from None
    unknown = sorted(set(document) - _TOP_LEVEL)
    if unknown:
        raise UsageError(f"{path}: unknown key {unknown[0]!r} (known: default, connections)")
    default = document.get("default")
    if default is not None and not isinstance(default, str):
        raise UsageError(f"{path}: 'default' must be a connection name")
    tables = document.get("connections", {})
    if not isinstance(tables, dict):
        raise UsageError(f"{path}: 'connections' must be a table of [connections.NAME] tables")
    connections: dict[str, ConnectionSettings] = {}
    for name, table in tables.items():
        if not isinstance(table, dict):
            raise UsageError(f"{path}: connections.{name} must be a table")
        connections[name] = _connection(name, table, path)
    config = CliConfig(path=path, default=default, connections=MappingProxyType(connections))
    if default is not None:
        config.connection(default)  # a default that names nothing is reported now, not at first use
    return config


def _connection(name: str, table: dict[str, Any], path: Path) -> ConnectionSettings:
    where = f"{path}: connections.{name}"
    unknown = sorted(set(table) - _KEYS)
    if unknown:
        raise UsageError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(sorted(_KEYS))})")
    fields: dict[str, Any] = {}
    for key, value in table.items():
        if key in _STRINGS or key in _PATHS:
            if not isinstance(value, str) or not value:
                raise UsageError(f"{where}.{key} must be a non-empty string")
            fields[key] = path.parent / value if key in _PATHS else value
        elif key == "tls":
            if not isinstance(value, bool):
                raise UsageError(f"{where}.tls must be true or false")
            fields[key] = value
        elif key == "timeout":
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < math.inf:
                raise UsageError(f"{where}.timeout must be a positive number of seconds")
            fields[key] = float(value)
        else:
            if not isinstance(value, dict):
                raise UsageError(f"{where}.options must be a table")
            fields[key] = MappingProxyType(dict(value))
    if "token" in fields and "token_env" in fields:
        raise UsageError(f"{where}: give token or token_env, not both")
    return ConnectionSettings(name=name, **fields)
