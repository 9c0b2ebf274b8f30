"""Named connections: `brokerctl`'s TOML config file, in the words each gateway declares.

```toml
default = "paper"                 # used when no connection is named and no gateway option is given

[connections.paper]
gateway = "my-broker"             # registered gateway name (default "grpc")
host = "broker.example"           # any option the gateway declares, by its name or its flag's name
api_key_env = "PAPER_API_KEY"     # a secret from an environment variable: <option>_env
certificate = "certs/me.pem"      # file options are relative to this file

[connections.paper.options]       # anything else the gateway's factory takes, passed as is
retries = 2
```

The file is read without knowing any gateway: which keys a connection may hold is decided by the
options its gateway declares (`GatewayOption`), when the connection is used.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any

import attrs

from broker_plugins._errors import InvalidRequestError
from broker_plugins._options import GatewayOption
from broker_plugins.cli._exit import UsageError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 only
    import tomli as tomllib

__all__ = [
    "CONFIG_ENV",
    "CliConfig",
    "ConnectionSettings",
    "default_config_path",
    "load_config",
    "parse_config",
]

CONFIG_ENV = "BROKERCTL_CONFIG"
"""Path of the config file, instead of `$XDG_CONFIG_HOME/brokerctl/config.toml`."""
DEFAULT_GATEWAY = "grpc"

_TOP_LEVEL = frozenset({"default", "connections"})
_ENV_SUFFIX = "_env"


def _key_of(option: GatewayOption) -> str:
    """The flag's name as a TOML key (`--api-key` is `api_key`)."""
    return option.cli_flag.removeprefix("--").replace("-", "_")


@attrs.frozen(kw_only=True)
class ConnectionSettings:
    """How to reach one broker: a gateway name and the option values the config or the flags give."""

    name: str
    gateway: str = DEFAULT_GATEWAY
    values: Mapping[str, object] = attrs.field(factory=lambda: MappingProxyType({}), repr=False)
    """Option values by key, as written (text, numbers, booleans)."""
    options: Mapping[str, Any] = attrs.field(factory=lambda: MappingProxyType({}), repr=False)
    """Passed to the factory as is (the `[connections.NAME.options]` table)."""
    base: Path | None = None
    """The config file's directory, which relative file options are taken from."""

    def gateway_options(
        self, declared: Sequence[GatewayOption], environ: Mapping[str, str]
    ) -> dict[str, Any]:
        """Keyword options for `BrokerRegistry.create(self.gateway, ...)`, checked against `declared`."""
        by_key: dict[str, GatewayOption] = {}
        for each in declared:
            by_key[each.name] = by_key[_key_of(each)] = each
            if each.secret:
                by_key[each.name + _ENV_SUFFIX] = each
        built: dict[str, Any] = dict(self.options)
        for key, written in self.values.items():
            option = by_key.get(key)
            if option is None:
                known = ", ".join(sorted(by_key)) or "none"
                raise UsageError(
                    f"connection {self.name!r}: gateway {self.gateway!r} has no option {key!r} "
                    f"(known: {known})"
                )
            value = written
            if key.endswith(_ENV_SUFFIX) and option.secret and key != option.name:
                value = self._from_environment(option, written, environ)
            elif option.kind is Path and isinstance(written, str) and self.base is not None:
                value = str(self.base / written)
            try:
                built[option.name] = option.convert(value)
            except InvalidRequestError as error:
                raise UsageError(f"connection {self.name!r}: {error}") from None
        return built

    def _from_environment(self, option: GatewayOption, variable: object, environ: Mapping[str, str]) -> str:
        if not isinstance(variable, str) or not variable:
            raise UsageError(f"connection {self.name!r}: {option.name}{_ENV_SUFFIX} must name a variable")
        value = environ.get(variable)
        if not value:
            raise UsageError(f"connection {self.name!r}: environment variable {variable} is not set")
        return value

    def given(self, declared: Sequence[GatewayOption]) -> set[str]:
        """The names of the declared options this connection sets."""
        keys = set(self.values)
        return {
            option.name
            for option in declared
            if keys & {option.name, _key_of(option), option.name + _ENV_SUFFIX}
        }


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
    """Parse config text; relative file options in it are taken from `path`'s directory."""
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
    values = dict(table)
    gateway = values.pop("gateway", DEFAULT_GATEWAY)
    if not isinstance(gateway, str) or not gateway:
        raise UsageError(f"{where}.gateway must be a gateway name")
    options = values.pop("options", {})
    if not isinstance(options, dict):
        raise UsageError(f"{where}.options must be a table")
    for key, value in values.items():
        if isinstance(value, dict | list):
            raise UsageError(f"{where}.{key} must be a single value (other options go in [{name}.options])")
        if key.endswith(_ENV_SUFFIX) and key.removesuffix(_ENV_SUFFIX) in values:
            raise UsageError(f"{where}: give {key.removesuffix(_ENV_SUFFIX)} or {key}, not both")
    return ConnectionSettings(
        name=name,
        gateway=gateway,
        values=MappingProxyType(values),
        options=MappingProxyType(dict(options)),
        base=path.parent,
    )
