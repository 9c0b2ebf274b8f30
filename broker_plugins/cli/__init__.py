"""`brokerctl`, the command line of the broker gateway layer (also `python -m broker_plugins`).

It is a host like any other: it finds gateways through `BrokerRegistry`, and when no broker is
named it runs the backend a plugin offers through the `provide_embedded_backend` hook (for the
`grpc` gateway, the reference bridge) inside its own process.
"""

from broker_plugins.cli._app import main
from broker_plugins.cli._backend import EmbeddedBackend, RunningBackend
from broker_plugins.cli._exit import ExitCode

__all__ = ["EmbeddedBackend", "ExitCode", "RunningBackend", "main"]
