"""An example Qt desktop host for broker-plugins: a watchlist, connection states and an order ticket.

`TradingSession` is the Qt-free half (connections, manager, streams, shutdown); `MainWindow` shows
one; `run_desktop()` puts them on one asyncio loop; `main()` is the `qt-desktop` command.
"""

from qt_desktop._app import DEFAULT_CONNECTIONS, main, run_desktop
from qt_desktop._session import ConnectionSpec, RunningBackend, SessionListener, TradingSession
from qt_desktop._window import MainWindow

__all__ = [
    "DEFAULT_CONNECTIONS",
    "ConnectionSpec",
    "MainWindow",
    "RunningBackend",
    "SessionListener",
    "TradingSession",
    "main",
    "run_desktop",
]
