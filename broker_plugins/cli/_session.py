"""Which broker a command talks to, and the connected gateway it gets.

In order: `--connection NAME` from the config file; a required option of the gateway given as a
flag (its address, say); the config's default connection; and when none of those exists, the
embedded backend a plugin provides for the gateway (the reference bridge for `grpc`), run inside
this process. Flags override what the config says. Every option here comes from what the gateway
declares: nothing in this module knows a gateway's options.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any

import attrs

from broker_plugins._errors import PluginError
from broker_plugins._gateway import IBrokerGateway
from broker_plugins._options import GatewayOption
from broker_plugins.cli._backend import EmbeddedBackend, RunningBackend
from broker_plugins.cli._config import (
    DEFAULT_GATEWAY,
    CliConfig,
    ConnectionSettings,
    default_config_path,
    load_config,
)
from broker_plugins.cli._context import Context
from broker_plugins.cli._exit import CliError, ExitCode

__all__ = [
    "DEFAULT_GATEWAY",
    "Session",
    "embedded_backend",
    "open_session",
    "read_config",
    "selected_connections",
]

_FROM_FLAGS = "command line"


@attrs.frozen
class Session:
    """A connected gateway and where it leads; `backend` is set when it is the embedded one."""

    gateway: IBrokerGateway
    name: str
    description: str
    backend: RunningBackend | None = None


def read_config(ctx: Context) -> CliConfig:
    """The config file: `--config`, `$BROKERCTL_CONFIG` or the default place (optional there)."""
    explicit: Path | None = ctx.args.config
    if explicit is not None:
        return load_config(explicit, required=True)
    return load_config(default_config_path(ctx.environ), required=False)


def _flag_values(ctx: Context) -> dict[str, object]:
    """The gateway options given as flags or, for secrets, in `BROKERCTL_<NAME>`; flags win."""
    values: dict[str, object] = {}
    for option in ctx.declared:
        if option.secret and ctx.environ.get(option.environment_variable):
            values[option.name] = ctx.environ[option.environment_variable]
    values.update(ctx.flags)
    return values


def selected_connections(ctx: Context, *, every_configured: bool = False) -> list[ConnectionSettings]:
    """The connections the command line selects; empty means the embedded backend.

    With `every_configured` and no connection named, every configured connection.
    """
    args = ctx.args
    config = read_config(ctx)
    values = _flag_values(ctx)
    required = {option.name for option in ctx.declared if option.required}
    if args.connection:
        chosen = [config.connection(args.connection)]
    elif required and required & set(ctx.flags):
        chosen = [ConnectionSettings(name=_FROM_FLAGS, gateway=ctx.gateway_name)]
    elif every_configured and config.connections:
        chosen = [config.connections[name] for name in sorted(config.connections)]
    else:
        default = config.default_connection()
        chosen = [] if default is None else [default]
    if not chosen:
        return []
    overridden = []
    for settings in chosen:
        if settings.gateway != ctx.gateway_name:
            overridden.append(settings)  # flags are another gateway's options: they do not apply
            continue
        merged = {**settings.values, **values}
        overridden.append(attrs.evolve(settings, values=MappingProxyType(merged)))
    return overridden


def embedded_backend(ctx: Context, gateway_name: str) -> EmbeddedBackend:
    """The in-process backend a plugin provides for `gateway_name`."""
    backend = ctx.registry.embedded_backend(gateway_name)
    if backend is None:
        names = ", ".join(ctx.registry.names()) or "none"
        required = [option.cli_flag for option in ctx.declared if option.required]
        how = f"give {' '.join(required)}" if required else "give its options"
        raise CliError(
            f"no plugin provides an embedded backend for gateway {gateway_name!r} (installed gateways: "
            f"{names}): {how} or configure a connection",
            ExitCode.PLUGIN,
        )
    if not isinstance(backend, EmbeddedBackend):
        raise PluginError(
            f"the embedded backend for gateway {gateway_name!r} is a {type(backend).__name__}, "
            "which has no running() and serve()"
        )
    return backend


def create_gateway(ctx: Context, settings: ConnectionSettings) -> IBrokerGateway:
    """The gateway of `settings`, its secrets registered for redaction first."""
    declared = ctx.declared if settings.gateway == ctx.gateway_name else ctx.declared_for(settings.gateway)
    options = settings.gateway_options(declared, ctx.environ)
    _register_secrets(ctx, options, declared)
    return ctx.registry.create(settings.gateway, **options)


def _register_secrets(ctx: Context, options: Mapping[str, Any], declared: Sequence[GatewayOption]) -> None:
    for option in declared:
        value = options.get(option.name)
        if option.secret and isinstance(value, str):
            ctx.secrets.append(value)


def _embedded_options(ctx: Context) -> dict[str, object]:
    """Flags that apply to the embedded gateway too: not secrets, switches or files (those say which
    broker to reach, and the embedded one is fixed)."""
    applied: dict[str, object] = {}
    ignored: list[str] = []
    for option in ctx.declared:
        if option.name not in ctx.flags:
            continue
        if option.secret or option.kind in (bool, Path):
            ignored.append(option.cli_flag)
        else:
            applied[option.name] = option.convert(ctx.flags[option.name])
    if ignored:
        ctx.note(
            f"ignoring {', '.join(ignored)}: they choose a broker, and none was named (embedded backend)"
        )
    return applied


@contextlib.asynccontextmanager
async def open_embedded(ctx: Context) -> AsyncIterator[RunningBackend]:
    """Start the embedded backend of the gateway (the reference bridge for `grpc`); stop it on exit."""
    async with embedded_backend(ctx, ctx.gateway_name).running() as running:
        yield running


@contextlib.asynccontextmanager
async def open_session(ctx: Context, settings: ConnectionSettings | None) -> AsyncIterator[Session]:
    """Connect to `settings`, or to the embedded backend when it is None; disconnect on exit."""
    if settings is None:
        async with open_embedded(ctx) as running:
            ctx.note(f"no broker named: using {running.description}")
            for value in running.options.values():
                if isinstance(value, str) and ":" in value:
                    ctx.aliases[value] = "the embedded bridge"  # its temporary port tells nobody anything
            options = {**running.options, **_embedded_options(ctx)}
            gateway = ctx.registry.create(running.gateway_name, **options)
            async with gateway:
                yield Session(gateway, "embedded", running.description, running)
        return
    gateway = create_gateway(ctx, settings)
    where = f" ({settings.name})" if settings.name != _FROM_FLAGS else ""
    async with gateway:
        yield Session(gateway, settings.name, f"the {settings.gateway} gateway{where}")
