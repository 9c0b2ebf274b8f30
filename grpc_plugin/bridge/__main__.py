"""`python -m grpc_plugin.bridge`: run the reference bridge until SIGTERM or SIGINT.

Prints `listening on HOST:PORT` (flushed) once calls are accepted. On SIGTERM/SIGINT health goes
NOT_SERVING, streams end, calls in flight get a grace period, and the process exits 0.

The token can come from an environment variable (`--token-env NAME`) or a file (`--token-file
PATH`), so that it does not show in `ps`; `--token TOKEN` is there for quick local runs.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from grpc_plugin.bridge._budget import DEFAULT_BUDGET, Window
from grpc_plugin.bridge._gate import DEFAULT_ACCOUNT
from grpc_plugin.bridge._server import BridgeConfig, BridgeServer, TlsConfig

_log = logging.getLogger("grpc_plugin.bridge")


def _window(text: str) -> Window:
    calls, _, period = text.partition("/")
    try:
        return Window(int(calls), float(period))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected CALLS/SECONDS such as 20/1, got {text!r}") from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m grpc_plugin.bridge", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port; 0 picks a free one (default)")
    tokens = parser.add_mutually_exclusive_group()
    tokens.add_argument(
        "--token",
        help=f"require 'authorization: Bearer TOKEN' (account {DEFAULT_ACCOUNT!r}); visible in ps: "
        "prefer --token-env or --token-file",
    )
    tokens.add_argument("--token-env", metavar="NAME", help="the same, the token read from variable NAME")
    tokens.add_argument("--token-file", type=Path, metavar="PATH", help="the same, the token read from PATH")
    parser.add_argument("--state", type=Path, help="SQLite file for orders and accounts (default: memory)")
    parser.add_argument("--tls-cert", type=Path, help="server certificate chain (PEM)")
    parser.add_argument("--tls-key", type=Path, help="server private key (PEM)")
    parser.add_argument("--client-ca", type=Path, help="require client certificates signed by this CA (PEM)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the simulated market (default 0)")
    parser.add_argument("--tick-rate", type=float, default=10.0, help="quotes per second per symbol")
    parser.add_argument(
        "--budget",
        type=_window,
        action="append",
        metavar="CALLS/SECONDS",
        help="per-account call budget window, repeatable (default 20/1 and 1000/3600)",
    )
    parser.add_argument("--no-budget", action="store_true", help="do not limit calls")
    parser.add_argument(
        "--reply-delay",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="fault injection for tests: hold every unary reply this long after its work is done",
    )
    return parser


def config_from_args(argv: Sequence[str] | None = None) -> BridgeConfig:
    """The BridgeConfig the command line asks for (exits with a usage message if it is invalid)."""
    return _config(_parser(), argv)[0]


def _config(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> tuple[BridgeConfig, float]:
    args = parser.parse_args(argv)
    if args.reply_delay < 0:
        parser.error("--reply-delay must not be negative")
    if (args.tls_cert is None) != (args.tls_key is None):
        parser.error("--tls-cert and --tls-key go together")
    if args.client_ca is not None and args.tls_cert is None:
        parser.error("--client-ca needs --tls-cert and --tls-key")
    if args.tick_rate <= 0:
        parser.error("--tick-rate must be positive")
    tls = TlsConfig.from_files(args.tls_cert, args.tls_key, args.client_ca) if args.tls_cert else None
    budget = () if args.no_budget else tuple(args.budget or DEFAULT_BUDGET)
    token = _token(parser, args)
    config = BridgeConfig(
        host=args.host,
        port=args.port,
        tokens={token: DEFAULT_ACCOUNT} if token else {},
        state_path=args.state,
        tls=tls,
        seed=args.seed,
        tick_rate=args.tick_rate,
        budget=budget,
    )
    return config, args.reply_delay


def _token(parser: argparse.ArgumentParser, args: argparse.Namespace) -> str | None:
    """The token the command line names, wherever it is kept; exits with usage if it is not there."""
    if args.token_env is not None:
        token = os.environ.get(args.token_env, "").strip()
        if not token:
            parser.error(f"--token-env {args.token_env}: the variable is unset or empty")
        return token
    if args.token_file is not None:
        path: Path = args.token_file
        try:
            token = path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as error:
            parser.error(f"--token-file {args.token_file}: cannot read it ({type(error).__name__})")
        if not token:
            parser.error(f"--token-file {args.token_file}: the file is empty")
        return token
    return str(args.token) if args.token else None


async def serve(config: BridgeConfig, *, reply_delay: float = 0.0) -> None:
    """Run a bridge until SIGTERM or SIGINT, then stop it gracefully."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(signum, stop.set)
        except NotImplementedError:  # Windows' event loops have no add_signal_handler
            signal.signal(signum, lambda *_: loop.call_soon_threadsafe(stop.set))
    server = BridgeServer(config)
    server.delay(reply_delay)
    await server.start()
    _log.info(
        "bridge ready: tls=%s, auth=%s, state=%s, seed=%d, tick rate %g/s, budget %s",
        "mutual" if config.tls and config.tls.client_ca else bool(config.tls),
        "token" if config.tokens else "open",
        config.state_path or "memory",
        config.seed,
        config.tick_rate,
        ", ".join(map(str, config.budget)) or "none",
    )
    print(f"listening on {server.address}", flush=True)
    try:
        await stop.wait()
        _log.info("stopping")
    finally:
        await server.stop(grace=5.0)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `python -m grpc_plugin.bridge`."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    config, reply_delay = _config(_parser(), argv)
    try:
        asyncio.run(serve(config, reply_delay=reply_delay))
    except OSError as error:
        _log.error("%s", error)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
