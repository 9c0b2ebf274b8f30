"""The project's tests: gRPC's C-core keeps its own log lines to itself unless asked.

C-core writes to stderr past Python's logging (`Got goaway`, `Handshake failed`), which would mix
into pytest's output; it reads GRPC_VERBOSITY once, before it logs anything, so this is set before
any test module imports grpc. A value set by whoever runs the tests is kept.
"""

from __future__ import annotations

import os

os.environ.setdefault("GRPC_VERBOSITY", "NONE")
