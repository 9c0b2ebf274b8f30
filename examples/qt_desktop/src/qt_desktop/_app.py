"""The host: one asyncio loop on top of Qt's (qasync), the session, the window, and shutdown.

`main()` builds the QApplication and runs `run_desktop()` on a qasync loop. `run_desktop()` shows
the window, opens the session (embedded bridges, gateways, the connection manager, the streams),
waits for the window to close, and only then returns: the session is closed (every task cancelled
and awaited, every gateway disconnected, every bridge stopped) before the loop ends, so nothing is
left for the loop's own shutdown to cancel.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Iterator, Sequence
from typing import Any

import qasync
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QApplication

from broker_plugins import BrokerError, BrokerRegistry
from qt_desktop._session import ConnectionSpec, TradingSession
from qt_desktop._window import MainWindow

__all__ = ["DEFAULT_CONNECTIONS", "main", "run_desktop"]

DEFAULT_CONNECTIONS = (
    ConnectionSpec("paper-krx", ("005930", "000660", "035420")),
    ConnectionSpec("paper-us", ("AAPL", "MSFT", "NVDA")),
)
"""Two named connections, each to its own embedded reference bridge: nothing to set up."""

TOKEN_VARIABLE = "QT_DESKTOP_TOKEN"  # noqa: S105 - the name of the variable, not a token
"""Environment variable with the bridge token for `--connection` (never a command-line argument)."""


async def run_desktop(
    connections: Sequence[ConnectionSpec] = DEFAULT_CONNECTIONS, *, registry: BrokerRegistry | None = None
) -> None:
    """Show the window on `connections`; return once it is closed and everything behind it is shut."""
    app = QApplication.instance()
    if app is None:
        raise RuntimeError("run_desktop() needs a QApplication, and a qasync loop running on it")
    if isinstance(app, QGuiApplication):
        # The loop, not Qt, decides when the program ends: if Qt quit when the last window closed,
        # the loop would stop under this coroutine before it had closed the gateways.
        app.setQuitOnLastWindowClosed(False)
    session = TradingSession(connections, registry=registry)
    window = MainWindow(session)
    window.show()  # at once: the person sees the connections come up
    try:
        async with session:
            with _closing_on_signals(window):
                await window.wait_closed()
    finally:
        window.close()  # when opening the session failed; a no-op once closed


@contextlib.contextmanager
def _closing_on_signals(window: MainWindow) -> Iterator[None]:
    """Ctrl+C, SIGTERM (and Ctrl+Break on Windows) close the window, as a click on its X would."""
    loop = asyncio.get_running_loop()
    on_loop: list[signal.Signals] = []
    replaced: list[tuple[signal.Signals, Any]] = []  # Any: whatever signal.signal() gave back
    # SIGBREAK is Windows' Ctrl+Break; SIGTERM is never delivered there, but costs nothing to watch.
    watched = [signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGBREAK", None)]
    for signum in [s for s in watched if s is not None]:
        try:
            loop.add_signal_handler(signum, window.close)
            on_loop.append(signum)
        except NotImplementedError:
            # Windows: the proactor loop (qasync's there) has no add_signal_handler. Python runs its
            # own handler between bytecodes, which the loop's Qt timers give it often enough; the
            # handler only hands the close to the loop.
            previous = signal.signal(signum, lambda *_: loop.call_soon_threadsafe(window.close))
            replaced.append((signum, previous))
        except (RuntimeError, ValueError):
            pass  # not the main thread: whoever runs this loop handles signals
    try:
        yield
    finally:
        for signum in on_loop:
            loop.remove_signal_handler(signum)
        for signum, previous in replaced:
            if previous is not None:  # None: a handler not set from Python, nothing to put back
                signal.signal(signum, previous)


def _parse(argv: Sequence[str] | None) -> list[ConnectionSpec]:
    parser = argparse.ArgumentParser(
        prog="qt-desktop",
        description="A watchlist, connection states and an order ticket over broker-plugins gateways. "
        "With no --connection it runs two embedded reference bridges (simulated market, paper trading).",
    )
    parser.add_argument(
        "--connection",
        action="append",
        default=[],
        metavar="NAME=HOST:PORT",
        help=f"a bridge to connect to (repeatable); its token comes from ${TOKEN_VARIABLE}",
    )
    parser.add_argument(
        "--symbols",
        default="005930,000660,035420",
        help="comma-separated symbols to watch on each --connection (default: %(default)s)",
    )
    args = parser.parse_args(argv)
    if not args.connection:
        return list(DEFAULT_CONNECTIONS)
    symbols = tuple(symbol for symbol in args.symbols.split(",") if symbol)
    token = os.environ.get(TOKEN_VARIABLE)
    specs = []
    for given in args.connection:
        name, _, target = given.partition("=")
        if not name or not target:
            parser.error(f"--connection takes NAME=HOST:PORT, got {given!r}")
        options: dict[str, object] = {"target": target}
        if token:
            options["token"] = token
        specs.append(ConnectionSpec(name, symbols, options=options))
    return specs


def main(argv: Sequence[str] | None = None) -> int:
    """Run the desktop host until its window is closed; returns the process exit code."""
    try:
        connections = _parse(argv)
    except ValueError as error:
        print(f"qt-desktop: {error}", file=sys.stderr)
        return 2
    _app = QApplication.instance() or QApplication(sys.argv[:1])  # held: qasync's loop runs on it
    try:
        qasync.run(run_desktop(connections))
    except (BrokerError, LookupError) as error:
        print(f"qt-desktop: {error}", file=sys.stderr)
        return 1
    return 0
