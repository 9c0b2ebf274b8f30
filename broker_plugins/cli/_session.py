"""Which broker a command talks to, and the connected gateway it gets.

In order: `--connection NAME` from the config file; `--target`; the config's default connection;
and when none of those exists, the embedded backend a plugin provides for `--gateway` (the
reference bridge for `grpc`), run inside this process. Flags override what the config says.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import attrs

from broker_plugins._errors import PluginError
from broker_plugins._gateway import IBrokerGateway
from broker_plugins.cli._backend import EmbeddedBackend, RunningBackend
from broker_plugins.cli._config import (
    TOKEN_ENV,
    CliConfig,
    ConnectionSettings,
    default_config_path,
    load_config,
)
from broker_plugins.cli._context import Context
from broker_plugins.cli._exit import CliError, ExitCode

__all__ = ["DEFAULT_GATEWAY", "Session", "embedded_backend", "open_session", "selected_connections"]

DEFAULT_GATEWAY = "grpc"


@attrs.frozen
class Session:
    """A connected gateway and where it leads; `backend` is set when it is the embedded one."""

    gateway: IBrokerGateway
    name: str
    description: str
    backend: RunningBackend | None = None


def _config(ctx: Context) -> CliConfig:
    explicit: Path | None = ctx.args.config
    if explicit is not None:
        return load_config(explicit, required=True)
    return load_config(default_config_path(ctx.environ), required=False)


def _overrides(ctx: Context) -> dict[str, Any]:
    """The connection settings given as flags (or `BROKERCTL_TOKEN`), which beat the config file."""
    args = ctx.args
    overrides: dict[str, Any] = {}
    for field in ("gateway", "target", "server_name", "timeout", "ca_cert", "client_cert", "client_key"):
        value = getattr(args, field)
        if value is not None:
            overrides[field] = value
    token = args.token or ctx.environ.get(TOKEN_ENV)
    if token:
        overrides["token"] = token
        overrides["token_env"] = None
    if args.tls:
        overrides["tls"] = True
    return overrides


def selected_connections(ctx: Context, *, every_configured: bool = False) -> list[ConnectionSettings]:
    """The connections the command line selects; empty means the embedded backend.

    With `every_configured`, no `--connection` and no `--target`, every configured connection.
    """
    args = ctx.args
    config = _config(ctx)
    overrides = _overrides(ctx)
    if args.connection:
        chosen = [config.connection(args.connection)]
    elif args.target:
        chosen = [ConnectionSettings(name="target")]
    elif every_configured and config.connections:
        chosen = [config.connections[name] for name in sorted(config.connections)]
    else:
        default = config.default_connection()
        chosen = [] if default is None else [default]
    if not chosen:
        if args.token or args.tls or args.ca_cert or args.client_cert:
            ctx.note("ignoring the token and TLS options: they apply to --target or a configured connection")
        return []
    return [attrs.evolve(settings, **overrides) for settings in chosen]


def embedded_backend(ctx: Context, gateway_name: str) -> EmbeddedBackend:
    """The in-process backend a plugin provides for `gateway_name`."""
    backend = ctx.registry.embedded_backend(gateway_name)
    if backend is None:
        names = ", ".join(ctx.registry.names()) or "none"
        raise CliError(
            f"no plugin provides an embedded backend for gateway {gateway_name!r} (installed gateways: "
            f"{names}): give --target HOST:PORT or configure a connection",
            ExitCode.PLUGIN,
        )
    if not isinstance(backend, EmbeddedBackend):
        raise PluginError(
            f"the embedded backend for gateway {gateway_name!r} is a {type(backend).__name__}, "
            "which has no running() and serve()"
        )
    return backend


def _timeout_options(ctx: Context) -> dict[str, Any]:
    timeout: float | None = ctx.args.timeout
    return {} if timeout is None else {"connect_timeout": timeout, "timeouts": timeout}


def _create(ctx: Context, gateway_name: str, options: Mapping[str, Any]) -> IBrokerGateway:
    token = options.get("token")
    if isinstance(token, str):
        ctx.secrets.append(token)
    return ctx.registry.create(gateway_name, **options)


@contextlib.asynccontextmanager
async def open_embedded(ctx: Context) -> AsyncIterator[RunningBackend]:
    """Start the embedded backend of `--gateway` (the reference bridge for `grpc`); stop it on exit."""
    gateway_name = ctx.args.gateway or DEFAULT_GATEWAY
    async with embedded_backend(ctx, gateway_name).running() as running:
        yield running


@contextlib.asynccontextmanager
async def open_session(ctx: Context, settings: ConnectionSettings | None) -> AsyncIterator[Session]:
    """Connect to `settings`, or to the embedded backend when it is None; disconnect on exit."""
    if settings is None:
        async with open_embedded(ctx) as running:
            ctx.note(f"no --target and no configured connection: using {running.description}")
            gateway = _create(ctx, running.gateway_name, {**running.options, **_timeout_options(ctx)})
            async with gateway:
                yield Session(gateway, "embedded", running.description, running)
        return
    gateway = _create(ctx, settings.gateway, settings.gateway_options(ctx.environ))
    where = f" at {settings.target}" if settings.target else ""
    async with gateway:
        yield Session(gateway, settings.name, f"the {settings.gateway} gateway{where}")
