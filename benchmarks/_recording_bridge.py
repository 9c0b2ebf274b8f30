"""The reference bridge in a process of its own that also reports the arrivals it recorded.

    BRIDGE_TOKENS=t0,t1,... python -m benchmarks._recording_bridge --host 127.0.0.1 --port 0 --no-budget

Takes the options of `python -m grpc_plugin.bridge` and prints `listening on HOST:PORT` the same way.
`python -m grpc_plugin.bridge` has no way to report what it received, so this runs the same
`BridgeServer` and answers on stdin: `clear` forgets the records, `dump` prints one JSON line of
`[account, arrival]` pairs (arrival is `time.monotonic()`, comparable across processes on Linux),
`stop` (or end of input) stops it. Token `tN` (from BRIDGE_TOKENS, never a command line) is account
`process-N`.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys

import attrs

from grpc_plugin.bridge import BridgeServer
from grpc_plugin.bridge.__main__ import config_from_args


async def serve() -> None:
    tokens = [token for token in os.environ.get("BRIDGE_TOKENS", "").split(",") if token]
    config = config_from_args(sys.argv[1:])
    config = attrs.evolve(config, tokens={token: f"process-{index}" for index, token in enumerate(tokens)})
    server = BridgeServer(config)
    await server.start()
    loop = asyncio.get_running_loop()
    stdin = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    print(f"listening on {server.address}", flush=True)
    try:
        while (command := (await stdin.readline()).decode().strip()) not in ("", "stop"):
            if command == "clear":
                server.clear_requests()
            elif command == "dump":
                seen = [
                    [record.account, record.arrived]
                    for record in server.requests
                    if record.method == "GetQuote" and record.rejected is None
                ]
                print(json.dumps(seen), flush=True)
    finally:
        await server.stop(grace=1.0)


if __name__ == "__main__":
    asyncio.run(serve())
