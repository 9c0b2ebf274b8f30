"""The bridge kit: a wire-level conformance check for any server of `broker.bridge.v1`.

Run it against a running bridge, in any language::

    pytest --pyargs conformance_tests.bridge --bridge-target HOST:PORT [--bridge-token-env NAME]
        [--bridge-tls-ca PEM [--bridge-tls-cert PEM --bridge-tls-key PEM]] [--bridge-paper]
        [--bridge-budget CALLS/SECONDS] [--bridge-symbol SYMBOL]

Each test judges one clause (`BK-AUTH-1`, ...) of docs/bridge-contract.md; docs/bridge-kit.md lists
them. The kit talks gRPC with the generated stubs only: it uses neither the gateway nor the reference
bridge. Importing this package imports no gRPC (its pytest plugin is loaded in every pytest run).
"""

from __future__ import annotations

from conformance_tests.bridge._clauses import CLAUSES, Clause, Needs, Rule, clause

__all__ = ["CLAUSES", "Clause", "Needs", "Rule", "clause"]
