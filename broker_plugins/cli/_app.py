"""`brokerctl`: the argument parser, the event loop, and every error turned into one line and a code."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import importlib.metadata
import logging
import os
import signal
import sys
import traceback
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn

from broker_plugins._enums import Interval, TimeInForce
from broker_plugins._errors import BrokerError
from broker_plugins._options import GatewayOption
from broker_plugins._registry import BrokerRegistry
from broker_plugins.cli import _commands
from broker_plugins.cli._config import CONFIG_ENV, default_config_path, load_config
from broker_plugins.cli._context import Context
from broker_plugins.cli._exit import CliError, ExitCode, exit_code_for
from broker_plugins.cli._output import dumps
from broker_plugins.cli._session import DEFAULT_GATEWAY, embedded_backend

__all__ = ["build_parser", "main"]

PROG = "brokerctl"

_EPILOG = f"""\
With no broker named (no --connection, no default connection, none of the gateway's required
options), commands run the embedded backend of the gateway in this process, and say so on stderr.
Config file: --config FILE, ${CONFIG_ENV}, or $XDG_CONFIG_HOME/brokerctl/config.toml. A gateway's
secret options are never printed; each may also come from $BROKERCTL_<OPTION>.

exit codes: 0 ok, 1 failure, 2 usage or invalid request, 3 not found, 4 unavailable or timed out,
5 authentication, 6 order rejected, 7 order outcome unknown, 8 rate limited, 9 plugin problem,
130 interrupted"""

Handler = Callable[[Context], Awaitable[int] | int]


def _lazy(module: str, name: str) -> Handler:
    """A command's handler, imported when the command runs: a start-up pays only for its own."""

    def handler(ctx: Context) -> Awaitable[int] | int:
        run: Handler = getattr(importlib.import_module(f"broker_plugins.cli.{module}"), name)
        return run(ctx)

    return handler


demo = _lazy("_demo", "demo")
watch = _lazy("_watch", "watch")
conformance = _lazy("_conformance", "conformance")
completion = _lazy("_completion", "completion")
calendar = _lazy("_calendar", "calendar")

_DEFAULTS: dict[str, object] = {
    "gateway": None,
    "config": None,
    "connection": None,
    "json": False,
    "debug": False,
}
"""Options every command may take; SUPPRESS keeps a subcommand from overwriting with its default what
was given before the command name, and these fill in what was given nowhere."""
_FLAG_PREFIX = "gateway_option."
_METAVARS = {float: "NUMBER", int: "N", Path: "FILE"}


class _BadArguments(Exception):
    """What the parser could not take, said in one line, like every other brokerctl error."""


class _Parser(argparse.ArgumentParser):
    """Usage errors raise `_BadArguments` instead of printing argparse's usage block."""

    def error(self, message: str) -> NoReturn:
        raise _BadArguments(f"{message} (see: {self.prog} --help)")


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


def _output_options() -> argparse.ArgumentParser:
    output = argparse.ArgumentParser(add_help=False, argument_default=argparse.SUPPRESS)
    group = output.add_argument_group("output")
    group.add_argument("--json", action="store_true", help="print JSON (JSON lines for watch; errors too)")
    group.add_argument("--debug", action="store_true", help="show tracebacks and library logs")
    return output


def _selection_options() -> argparse.ArgumentParser:
    selection = argparse.ArgumentParser(add_help=False, argument_default=argparse.SUPPRESS)
    group = selection.add_argument_group("which broker")
    group.add_argument("--gateway", metavar="NAME", help=f"registered gateway (default {DEFAULT_GATEWAY})")
    group.add_argument("--config", type=Path, metavar="FILE", help="TOML file of named connections")
    group.add_argument("--connection", metavar="NAME", help="a connection from the config file")
    return selection


def _add_gateway_options(
    command: argparse.ArgumentParser, gateway_name: str, declared: Sequence[GatewayOption]
) -> None:
    """The options the gateway's plugin declares, as flags of a command that connects."""
    if not declared:
        return
    group = command.add_argument_group(f"options of the {gateway_name} gateway (declared by its plugin)")
    for option in declared:
        help_text = option.help
        if option.secret:
            help_text = f"{help_text}; never printed (better: ${option.environment_variable})"
        try:
            if option.kind is bool:
                group.add_argument(
                    option.cli_flag,
                    action="store_true",
                    dest=_FLAG_PREFIX + option.name,
                    default=argparse.SUPPRESS,
                    help=help_text,
                )
            else:
                group.add_argument(
                    option.cli_flag,
                    dest=_FLAG_PREFIX + option.name,
                    default=argparse.SUPPRESS,
                    metavar=option.metavar or _METAVARS.get(option.kind, option.name.upper()),
                    help=help_text,
                )
        except argparse.ArgumentError:
            continue  # the command has a flag of that name itself: the option stays for the config file


def build_parser(
    gateway_name: str = DEFAULT_GATEWAY, declared: Sequence[GatewayOption] = ()
) -> argparse.ArgumentParser:
    """The `brokerctl` parser; connecting commands take the options `declared` by `gateway_name`."""
    output, selection = _output_options(), _selection_options()
    parser = _Parser(
        prog=PROG,
        description="Talk to a broker through its gateway plugin: market data, orders, account, health.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[output, selection],
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    _add_gateway_options(parser, gateway_name, declared)  # before the command name too
    commands: Any = parser.add_subparsers(
        dest="command", metavar="COMMAND", required=True, parser_class=_Parser
    )

    def add(name: str, summary: str, handler: Handler, *, connects: bool = True) -> argparse.ArgumentParser:
        parents = [output, selection] if connects else [output]
        command: argparse.ArgumentParser = commands.add_parser(
            name, help=summary, description=summary, parents=parents
        )
        command.set_defaults(handler=handler)
        if connects:
            _add_gateway_options(command, gateway_name, declared)
        return command

    demo_options = add("demo", "the whole system in one command, reconnect included", demo, connects=False)
    demo_options.add_argument("--symbol", default="005930", help="instrument to show and trade")
    demo_options.add_argument("--quantity", default="10", help="shares to buy")
    demo_options.add_argument(
        "--outage", type=_positive_float, default=1.0, metavar="SECONDS", help="how long the bridge is down"
    )
    add("plugins", "gateway plugins, and plugins that failed to load", _commands.plugins, connects=False)
    serve = commands.add_parser(
        "serve",
        help="run the embedded backend as a server (its options: brokerctl serve --help)",
        add_help=False,
        prefix_chars="+",  # every option after `serve` belongs to the backend's own command line
    )
    serve.add_argument("backend_args", nargs=argparse.REMAINDER)
    serve.set_defaults(handler=_serve)
    _market_and_trading_commands(add)
    watch_options = add("watch", "live quotes with the connection state", watch)
    watch_options.add_argument("symbols", nargs="+", metavar="SYMBOL", help="instrument codes")
    watch_options.add_argument("--count", type=_positive_int, metavar="N", help="stop after N quotes")
    watch_options.add_argument("--duration", type=_positive_float, metavar="SECONDS", help="stop after")
    health = add("health", "health of each configured connection", _commands.health)
    health.add_argument(
        "--wait",
        type=_positive_float,
        default=5.0,
        metavar="SECONDS",
        help="wait for each connection (default 5)",
    )
    suite = add(
        "conformance",
        "run the conformance suite on a gateway, verdict per clause",
        conformance,
        connects=False,
    )
    suite.add_argument("name", metavar="NAME", nargs="?", help="registered gateway name")
    suite.usage = (
        f"{PROG} conformance NAME | --bridge HOST:PORT [--paper] [--budget CALLS/SECONDS] [--tls-ca PEM]"
        " [--suite-timeout SECONDS] [-- PYTEST_ARG ...]"
    )
    kit = suite.add_argument_group("the bridge kit (a server of broker.bridge.v1, judged over the wire)")
    kit.add_argument(
        "--bridge", metavar="HOST:PORT", help="run the bridge kit on this server (token: $BROKERCTL_TOKEN)"
    )
    kit.add_argument(
        "--paper", action="store_true", help="also clauses that place orders: paper accounts only"
    )
    kit.add_argument(
        "--budget", metavar="CALLS/SECONDS", help="also budget clauses, for a bridge with this budget"
    )
    kit.add_argument("--tls-ca", type=Path, metavar="PEM", help="TLS, trusting this CA")
    suite.add_argument(
        "--suite-timeout",
        type=_positive_float,
        default=1800.0,
        metavar="SECONDS",
        help="give up on the suite after this long (default 1800)",
    )
    completion_options = add(
        "completion", "a shell completion script: brokerctl completion bash", completion, connects=False
    )
    completion_options.add_argument("shell", choices=["bash", "zsh"], help="the shell to complete in")
    return parser


def _market_and_trading_commands(add: Callable[..., argparse.ArgumentParser]) -> None:
    """The one-shot commands: quotes, candles, instruments, orders, positions, balance."""
    quote = add("quote", "latest quotes", _commands.quote)
    quote.add_argument("symbols", nargs="+", metavar="SYMBOL", help="instrument codes, e.g. 005930 AAPL")
    candles = add("candles", "historical candles, oldest first", _commands.candles)
    candles.add_argument("symbol", metavar="SYMBOL", help="instrument code")
    candles.add_argument(
        "--interval", choices=[i.value for i in Interval], default="1m", help="candle length (default 1m)"
    )
    candles.add_argument("--start", metavar="TIME", help="ISO 8601, UTC unless it says otherwise")
    candles.add_argument("--end", metavar="TIME", help="exclusive; default now")
    candles.add_argument("--limit", type=_positive_int, metavar="N", help="at most N candles (the latest N)")
    add("instrument", "an instrument and its trading rules", _commands.instrument).add_argument(
        "symbol", metavar="SYMBOL", help="instrument code"
    )
    add("instruments", "every instrument the broker lists", _commands.instruments).add_argument(
        "--exchange", metavar="EXCHANGE", help="only instruments of this exchange, e.g. KRX or NASDAQ"
    )
    calendar_options = add("calendar", "an exchange's trading sessions and holidays", calendar)
    calendar_options.add_argument("exchange", nargs="?", metavar="EXCHANGE", help="e.g. KRX or NASDAQ")
    calendar_options.add_argument("--symbol", metavar="SYMBOL", help="the exchange of this instrument")
    calendar_options.add_argument("--from", dest="start", metavar="DATE", help="first day of holidays")
    calendar_options.add_argument("--to", dest="end", metavar="DATE", help="last day of holidays")
    order = add("order", "place an order (market, or limit with --price)", _commands.order)
    order.add_argument("side", choices=["buy", "sell"], help="buy or sell")
    order.add_argument("symbol", metavar="SYMBOL", help="instrument code")
    order.add_argument("quantity", metavar="QTY", help="how many (a positive number)")
    order.add_argument("--price", metavar="PRICE", help="limit price (default: a market order)")
    order.add_argument("--client-order-id", metavar="ID", help="idempotency key (default: a fresh one)")
    order.add_argument(
        "--tif",
        choices=[t.value for t in TimeInForce if t.value != "unknown"],
        default="day",
        help="time in force (default day)",
    )
    order.add_argument("--wait", type=_positive_float, metavar="SECONDS", help="wait until the order is done")
    add("cancel", "cancel a working order", _commands.cancel).add_argument(
        "order_id", metavar="ORDER_ID", help="the broker's order id"
    )
    orders = add("orders", "the account's orders", _commands.orders)
    orders.add_argument("--open", action="store_true", help="only working orders")
    orders.add_argument("--symbol", metavar="SYMBOL", help="only orders of this instrument")
    add("positions", "the account's positions", _commands.positions)
    add("balance", "the account's cash", _commands.balance)


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


def _selected_gateway(arguments: Sequence[str], registry: BrokerRegistry, environ: Mapping[str, str]) -> str:
    """The gateway the command line is about, before it is fully parsed: its options are flags too."""
    pre = argparse.ArgumentParser(add_help=False)
    for flag in ("--gateway", "--connection", "--config"):
        pre.add_argument(flag)
    known, _ = pre.parse_known_args(arguments)
    if known.gateway:
        return str(known.gateway)
    try:
        path = Path(known.config) if known.config else default_config_path(environ)
        config = load_config(path, required=False)
        settings = config.connection(known.connection) if known.connection else config.default_connection()
    except CliError:
        return DEFAULT_GATEWAY  # the full parse reports it
    return DEFAULT_GATEWAY if settings is None else settings.gateway


def _refuse(registry: BrokerRegistry, gateway_name: str, problem: str) -> ExitCode:
    """Report arguments the parser could not take; an unknown gateway is the likelier cause."""
    names = _names(registry)
    if names is not None and gateway_name not in names:
        available = ", ".join(names) or "none"
        print(
            f"{PROG}: error: no gateway named {gateway_name!r} (available: {available}); "
            f"so the command line cannot be read: {problem}",
            file=sys.stderr,
            flush=True,
        )
        return ExitCode.PLUGIN
    print(f"{PROG}: error: {problem}", file=sys.stderr, flush=True)
    return ExitCode.USAGE


def _names(registry: BrokerRegistry) -> list[str] | None:
    try:
        return registry.names()
    except BrokerError:
        return None


def _declared(registry: BrokerRegistry, gateway_name: str) -> tuple[GatewayOption, ...]:
    try:
        infos = registry.gateways()
    except BrokerError:
        return ()  # reported when the command runs
    return next((info.options for info in infos if info.name == gateway_name), ())


def _dispatch(ctx: Context) -> int:
    handler: Handler = ctx.args.handler
    result = handler(ctx)
    if isinstance(result, int):
        return result
    return asyncio.run(_guarded(result))


def main(argv: Sequence[str] | None = None, *, registry: BrokerRegistry | None = None) -> int:
    """Run `brokerctl` with `argv` (default: the process's arguments); returns the exit code."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    # What follows `--` is cut off before parsing: argparse cannot give it to `conformance` once an
    # option stands between NAME and `--`. It goes to pytest, or back to `serve`'s own arguments.
    cut = arguments.index("--") if "--" in arguments else len(arguments)
    passed_on = arguments[cut + 1 :]
    _quiet_native_logs(os.environ, debug="--debug" in arguments[:cut])
    registry = registry or BrokerRegistry()
    gateway_name = _selected_gateway(arguments[:cut], registry, os.environ)
    declared = _declared(registry, gateway_name)
    parser = build_parser(gateway_name, declared)
    try:
        args = parser.parse_args(arguments[:cut])
        if args.command == "serve" and cut < len(arguments):
            args.backend_args = [*args.backend_args, *arguments[cut:]]
        elif passed_on and args.command != "conformance":
            parser.error(f"arguments after -- are only for conformance: {' '.join(passed_on)}")
    except SystemExit as done:  # --help or --version
        return done.code if isinstance(done.code, int) else ExitCode.USAGE
    except _BadArguments as problem:
        return _refuse(registry, gateway_name, str(problem))
    args.pytest_args = passed_on
    for name, value in _DEFAULTS.items():
        if not hasattr(args, name):
            setattr(args, name, value)
    flags = {
        option.name: getattr(args, _FLAG_PREFIX + option.name)
        for option in declared
        if hasattr(args, _FLAG_PREFIX + option.name)
    }
    if args.debug:
        logging.basicConfig(level=logging.DEBUG, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    ctx = Context(
        args,
        registry,
        sys.stdout,
        sys.stderr,
        os.environ,
        gateway_name=gateway_name,
        declared=declared,
        flags=flags,
    )
    for option in declared:
        for value in (flags.get(option.name), os.environ.get(option.environment_variable)):
            if option.secret and isinstance(value, str):
                ctx.secrets.append(value)
    try:
        return int(_dispatch(ctx))
    except (KeyboardInterrupt, _Interrupted):
        ctx.note("interrupted")
        return int(ExitCode.INTERRUPTED)
    except Exception as error:  # noqa: BLE001 - every failure ends as one line and an exit code
        return int(_report(ctx, error))


def _quiet_native_logs(environ: Mapping[str, str], *, debug: bool) -> None:
    """Keep native libraries of plugins from writing their own log lines to the user's terminal.

    gRPC's C-core (under the grpc plugin) writes to stderr itself, past Python's logging; it reads
    `GRPC_VERBOSITY` once, before it logs anything, so this runs before any plugin loads. A value
    the user set is kept; `--debug` lets it speak.
    """
    if "GRPC_VERBOSITY" not in environ:
        os.environ["GRPC_VERBOSITY"] = "INFO" if debug else "NONE"


def _report(ctx: Context, error: Exception) -> ExitCode:
    code = exit_code_for(error)
    if ctx.args.debug:
        traceback.print_exception(type(error), error, error.__traceback__, file=ctx.err)
    message = str(error) or type(error).__name__
    if not isinstance(error, BrokerError | CliError):
        message = f"unexpected {type(error).__name__}: {message} (rerun with --debug for the traceback)"
    message = ctx.humane(message)
    if ctx.json:
        document = {"error": {"type": type(error).__name__, "message": message, "exit_code": int(code)}}
        print(dumps(document, lines=True), file=ctx.err, flush=True)
    else:
        print(f"{PROG}: error: {message}", file=ctx.err, flush=True)
    return code
