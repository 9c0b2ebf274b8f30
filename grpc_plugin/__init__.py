"""The gRPC broker gateway (plugin `grpc`), its generated stubs, and the reference bridge server.

Hosts normally reach the gateway through `BrokerRegistry().create("grpc", target=...)`; the class
is exported for type hints and for hosts that build it directly.
"""

import logging

from grpc_plugin._candle_series import CandleSeries
from grpc_plugin._config import GatewayConfig
from grpc_plugin._gateway import GrpcBrokerGateway
from grpc_plugin._streams import OrderStreamGap

# A library reports through `logging` and leaves the handlers to the host.
logging.getLogger("grpc_plugin").addHandler(logging.NullHandler())

__all__ = ["CandleSeries", "GatewayConfig", "GrpcBrokerGateway", "OrderStreamGap"]
