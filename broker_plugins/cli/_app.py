"""`brokerctl`: the argument parser, the event loop, and every error turned into one line and a code."""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import logging
import os
import signal
import sys
import traceback
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from broker_plugins._enums import Interval, TimeInForce
from broker_plugins._errors import BrokerError
from broker_plugins._registry import BrokerRegistry
from broker_plugins.cli import _commands
from broker_plugins.cli._config import CONFIG_ENV, TOKEN_ENV
from broker_plugins.cli._conformance import conformance
from broker_plugins.cli._context import Context
from broker_plugins.cli._demo import demo
from broker_plugins.cli._exit import CliError, ExitCode, exit_code_for
from broker_plugins.cli._session import DEFAULT_GATEWAY, embedded_backend
from broker_plugins.cli._watch import watch

__all__ = ["build_parser", "main"]

PROG = "brokerctl"

_EPILOG = f"""\
With no --target and no configured connection, commands run the embedded reference bridge of the
gateway in this process (and say so on stderr). Config file: --config FILE, ${CONFIG_ENV}, or
$XDG_CONFIG_HOME/brokerctl/config.toml. Token: --token or ${TOKEN_ENV}.

exit codes: 0 ok, 1 failure, 2 usage or invalid request, 3 not found, 4 unavailable or timed out,
5 authentication, 6 order rejected, 7 order outcome unknown, 8 rate limited, 9 plugin problem,
130 interrupted"""

Handler = Callable[[Context], Awaitable[int] | int]

# Options every command takes, before or after its name. SUPPRESS keeps a subcommand from
# overwriting with its default what was given before the command name; `_DEFAULTS` fills the rest.
_DEFAULTS: dict[str, object] = {
    "gateway": None,
    "target": None,
    "token": None,
    "tls": False,
    "ca_cert": None,
    "client_cert": None,
    "client_key": None,
    "server_name": None,
    "config": None,
    "connection": None,
    "timeout": None,
    "json": False,
    "debug": False,
}


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return value


def _common_options() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False, argument_default=argparse.SUPPRESS)
    where = common.add_argument_group("connection")
    where.add_argument(
        "--gateway", metavar="NAME", help=f"registered gateway to use (default {DEFAULT_GATEWAY})"
    )
    where.add_argument("--target", metavar="HOST:PORT", help="bridge address (default: the embedded bridge)")
    where.add_argument("--token", help=f"bearer token (better: ${TOKEN_ENV}); never printed")
    where.add_argument("--tls", action="store_true", help="use TLS with the system's root certificates")
    where.add_argument("--ca-cert", type=Path, metavar="PEM", help="trust this CA (implies TLS)")
    where.add_argument("--client-cert", type=Path, metavar="PEM", help="client certificate (mutual TLS)")
    where.add_argument("--client-key", type=Path, metavar="PEM", help="client private key (mutual TLS)")
    where.add_argument("--server-name", metavar="NAME", help="expected TLS server name")
    where.add_argument("--config", type=Path, metavar="FILE", help="TOML file of named connections")
    where.add_argument("--connection", metavar="NAME", help="connection from the config file")
    where.add_argument("--timeout", type=_positive_float, metavar="SECONDS", help="connect and call deadline")
    output = common.add_argument_group("output")
    output.add_argument("--json", action="store_true", help="print JSON (JSON lines for watch)")
    output.add_argument("--debug", action="store_true", help="show tracebacks and library logs")
    return common


def build_parser() -> argparse.ArgumentParser:
    """The `brokerctl` parser: global options, then one subcommand."""
    common = _common_options()
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Talk to a broker through its gateway plugin: market data, orders, account, health.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[common],
    )
    version = _version()
    parser.add_argument("--version", action="version", version=f"%(prog)s {version}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add(name: str, summary: str, handler: Handler) -> argparse.ArgumentParser:
        command = commands.add_parser(name, help=summary, description=summary, parents=[common])
        command.set_defaults(handler=handler)
        return command

    add("demo", "the whole system in one command, reconnect included", demo)
    demo_options = commands.choices["demo"]
    demo_options.add_argument("--symbol", default="005930", help="instrument to show and trade")
    demo_options.add_argument("--quantity", default="10", help="shares to buy")
    demo_options.add_argument(
        "--outage", type=_positive_float, default=1.0, metavar="SECONDS", help="time down"
    )
    add("plugins", "gateway plugins, and plugins that failed to load", _commands.plugins)
    serve = commands.add_parser(
        "serve",
        help="run the embedded backend as a server (options: brokerctl serve --help)",
        add_help=False,
        prefix_chars="+",  # every option after `serve` belongs to the backend's own command line
    )
    serve.add_argument("backend_args", nargs=argparse.REMAINDER)
    serve.set_defaults(handler=_serve)
    add("quote", "latest quotes", _commands.quote).add_argument("symbols", nargs="+", metavar="SYMBOL")
    candles = add("candles", "historical candles, oldest first", _commands.candles)
    candles.add_argument("symbol", metavar="SYMBOL")
    candles.add_argument("--interval", choices=[i.value for i in Interval], default="1m")
    candles.add_argument("--start", metavar="TIME", help="ISO 8601, UTC unless it says otherwise")
    candles.add_argument("--end", metavar="TIME", help="exclusive; default now")
    candles.add_argument("--limit", type=_positive_int, metavar="N", help="at most N candles")
    add("instrument", "an instrument and its trading rules", _commands.instrument).add_argument(
        "symbol", metavar="SYMBOL"
    )
    order = add("order", "place an order (market, or limit with --limit)", _commands.order)
    order.add_argument("side", choices=["buy", "sell"])
    order.add_argument("symbol", metavar="SYMBOL")
    order.add_argument("quantity", metavar="QTY")
    order.add_argument("--limit", metavar="PRICE", help="limit price (default: a market order)")
    order.add_argument("--client-order-id", metavar="ID", help="idempotency key (default: a fresh one)")
    order.add_argument("--tif", choices=[t.value for t in TimeInForce if t.value != "unknown"], default="day")
    order.add_argument("--wait", type=_positive_float, metavar="SECONDS", help="wait until the order is done")
    add("cancel", "cancel a working order", _commands.cancel).add_argument("order_id", metavar="ORDER_ID")
    orders = add("orders", "the account's orders", _commands.orders)
    orders.add_argument("--open", action="store_true", help="only working orders")
    orders.add_argument("--symbol", metavar="SYMBOL")
    add("positions", "the account's positions", _commands.positions)
    add("balance", "the account's cash", _commands.balance)
    watch_options = add("watch", "live quotes with the connection state", watch)
    watch_options.add_argument("symbols", nargs="+", metavar="SYMBOL")
    watch_options.add_argument("--count", type=_positive_int, metavar="N", help="stop after N quotes")
    watch_options.add_argument("--duration", type=_positive_float, metavar="SECONDS", help="stop after")
    add("health", "health of each configured connection", _commands.health)
    suite = add("conformance", "run the conformance suite on a gateway, verdict per clause", conformance)
    suite.add_argument("name", metavar="NAME", help="registered gateway name")
    suite.usage = f"{PROG} conformance NAME [--suite-timeout SECONDS] [-- PYTEST_ARG ...]"
    suite.add_argument("--suite-timeout", type=_positive_float, default=1800.0, metavar="SECONDS")
    return parser


def _version() -> str:
    try:
        return importlib.metadata.version("broker-plugins")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "unknown"


def _serve(ctx: Context) -> int:
    backend = embedded_backend(ctx, ctx.args.gateway or DEFAULT_GATEWAY)
    try:
        return backend.serve(ctx.args.backend_args)
    except SystemExit as done:  # the backend's own parser printed its --help or a usage error
        return done.code if isinstance(done.code, int) else ExitCode.USAGE


class _Interrupted(Exception):
    """Ctrl-C arrived; the command's task was cancelled and has cleaned up."""


async def _guarded(work: Awaitable[int]) -> int:
    """Run `work`; Ctrl-C cancels it, so every `async with` closes (streams, gateway, bridge)."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    interrupted = False

    def interrupt() -> None:
        nonlocal interrupted
        interrupted = True
        task.cancel()

    try:
        loop.add_signal_handler(signal.SIGINT, interrupt)
        installed = True
    except (NotImplementedError, RuntimeError, ValueError):  # Windows, or not the main thread
        installed = False
    try:
        return await work
    except asyncio.CancelledError:
        if interrupted:
            raise _Interrupted from None
        raise
    finally:
        if installed:
            loop.remove_signal_handler(signal.SIGINT)


def _dispatch(ctx: Context) -> int:
    handler: Handler = ctx.args.handler
    result = handler(ctx)
    if isinstance(result, int):
        return result
    return asyncio.run(_guarded(result))


def main(argv: Sequence[str] | None = None, *, registry: BrokerRegistry | None = None) -> int:
    """Run `brokerctl` with `argv` (default: the process's arguments); returns the exit code."""
    parser = build_parser()
    arguments = list(sys.argv[1:] if argv is None else argv)
    # What follows `--` is cut off before parsing: argparse cannot give it to `conformance` once an
    # option stands between NAME and `--`. It goes to pytest, or back to `serve`'s own arguments.
    cut = arguments.index("--") if "--" in arguments else len(arguments)
    passed_on = arguments[cut + 1 :]
    try:
        args = parser.parse_args(arguments[:cut])
        if args.command == "serve" and cut < len(arguments):
            args.backend_args = [*args.backend_args, *arguments[cut:]]
        elif passed_on and args.command != "conformance":
            parser.error(f"arguments after -- are only for conformance: {' '.join(passed_on)}")
    except SystemExit as done:  # --help, --version, or a usage error argparse has printed
        return done.code if isinstance(done.code, int) else ExitCode.USAGE
    args.pytest_args = passed_on
    for name, value in _DEFAULTS.items():
        if not hasattr(args, name):
            setattr(args, name, value)
    if args.debug:
        logging.basicConfig(level=logging.DEBUG, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    ctx = Context(args, registry or BrokerRegistry(), sys.stdout, sys.stderr, os.environ)
    try:
        return int(_dispatch(ctx))
    except (KeyboardInterrupt, _Interrupted):
        ctx.note("interrupted")
        return int(ExitCode.INTERRUPTED)
    except Exception as error:  # noqa: BLE001 - every failure ends as one line and an exit code
        return int(_report(ctx, error))


def _report(ctx: Context, error: Exception) -> ExitCode:
    code = exit_code_for(error)
    if ctx.args.debug:
        traceback.print_exception(type(error), error, error.__traceback__, file=ctx.err)
    message = str(error) or type(error).__name__
    if not isinstance(error, BrokerError | CliError):
        message = f"unexpected {type(error).__name__}: {message} (rerun with --debug for the traceback)"
    print(f"{PROG}: error: {ctx.redact(message)}", file=ctx.err, flush=True)
    return code
