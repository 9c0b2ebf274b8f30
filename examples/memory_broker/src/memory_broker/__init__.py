"""An example third-party `broker_plugins` gateway: a paper broker in memory, behind a breakable link.

`MemoryBrokerGateway` is what a host gets from `BrokerRegistry().create("memory")`; `MemoryBackend`
and `MemoryLink` are the broker and the network it talks over; `memory_broker.harness` holds the
conformance-suite harness.
"""

from memory_broker._backend import MemoryBackend
from memory_broker._gateway import MemoryBrokerGateway
from memory_broker._link import LinkDownError, MemoryLink, MemorySession

__all__ = ["LinkDownError", "MemoryBackend", "MemoryBrokerGateway", "MemoryLink", "MemorySession"]
