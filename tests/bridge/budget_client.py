"""One client process of the shared-budget tests: a gateway-like caller that believes it owns the budget.

`python -m tests.bridge.budget_client TARGET TOKEN CALLS PERIOD SECONDS MODE DELAY` paces GetQuote
calls with its own exact sliding window of CALLS per PERIOD plus 10 ms (as a gateway configured with
the account's whole budget does), and prints one JSON line: `{"admitted": n, "refused": m}`. MODE
says what it does when the bridge refuses: `honour` waits what `retry-after-ms` advises, `ignore`
goes on at its own pace (a gateway that reports the refusal to its caller, who calls again later).
It starts DELAY seconds after the file named by the environment variable `BUDGET_CLIENT_GO`
appears, so that the client processes begin when the test says.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections import deque
from pathlib import Path

import grpc

from grpc_plugin.generated.broker.bridge.v1 import market_data_pb2, market_data_pb2_grpc


def _retry_after(error: grpc.RpcError) -> float:
    for datum in error.trailing_metadata() or ():  # (key, value) named tuples
        if datum.key == "retry-after-ms":
            return float(datum.value) / 1000
    return 0.0


def main(argv: list[str]) -> int:
    target, token, calls, seconds, mode = argv[0], argv[1], int(argv[2]), float(argv[4]), argv[5]
    period, delay = float(argv[3]) + 0.01, float(argv[6])
    go = Path(os.environ["BUDGET_CLIENT_GO"])
    metadata = (("authorization", f"Bearer {token}"),)
    request = market_data_pb2.GetQuoteRequest(symbol="AAPL")
    with grpc.insecure_channel(target) as channel:
        stub = market_data_pb2_grpc.MarketDataServiceStub(channel)
        stub.GetQuote(market_data_pb2.GetQuoteRequest(symbol="AAPL"), metadata=metadata, timeout=10)
        print("ready", flush=True)
        while not go.exists():
            time.sleep(0.001)
        time.sleep(delay)
        grants: deque[float] = deque()
        admitted = refused = 0
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            now = time.monotonic()
            while grants and grants[0] <= now - period:
                grants.popleft()
            if len(grants) >= calls:
                time.sleep(grants[0] + period - now)
                continue
            grants.append(now)
            try:
                stub.GetQuote(request, metadata=metadata, timeout=10)
            except grpc.RpcError as error:
                if error.code() is not grpc.StatusCode.RESOURCE_EXHAUSTED:
                    raise
                refused += 1
                if mode == "honour":
                    time.sleep(_retry_after(error))
            else:
                admitted += 1
    print(json.dumps({"admitted": admitted, "refused": refused}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
