"""Registering the bridge's services on a grpc.aio server, with request parsing in the bridge's hands.

The generated `add_*Servicer_to_server` functions let gRPC parse each request; bytes that do not
parse (corrupt wire format, invalid UTF-8 in a string) then end the call with UNKNOWN, and the
servicer never hears of it. Here each method receives the raw bytes instead and parses them
itself: a request that does not parse goes to `CallGate.refuse_malformed`, which checks the token
and budget like for any call and answers INVALID_ARGUMENT, as the contract says.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from typing import Any

import grpc
import grpc.aio
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor
from google.protobuf.message import DecodeError, Message
from google.protobuf.message_factory import GetMessageClass

from grpc_plugin.bridge._gate import CallGate, Context

__all__ = ["add_service"]

_Parse = Callable[[bytes], "Message | str"]


def add_service(
    server: grpc.aio.Server, service: ServiceDescriptor, servicer: object, gate: CallGate
) -> None:
    """Serve every method of `service` with the servicer's method of the same name."""
    handlers = {
        method.name: _handler(method, getattr(servicer, method.name), gate) for method in service.methods
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service.full_name, handlers),))
    # Registered handlers let gRPC match the method without the generic lookup on every call.
    server.add_registered_method_handlers(service.full_name, handlers)


def _parser(method: MethodDescriptor) -> _Parse:
    request_type = GetMessageClass(method.input_type)

    def parse(raw: bytes) -> Message | str:
        try:
            return request_type.FromString(raw)
        except DecodeError as error:
            return str(error)

    return parse


def _handler(
    method: MethodDescriptor, implementation: Any, gate: CallGate
) -> grpc.RpcMethodHandler[Any, Any]:
    parse = _parser(method)
    serialize = GetMessageClass(method.output_type).SerializeToString
    name = method.name
    if method.server_streaming:
        stream: Callable[[Message, Context], AsyncGenerator[Message, None]] = implementation

        async def serve_stream(raw: bytes, context: Context) -> AsyncIterator[Message]:
            request = parse(raw)
            if isinstance(request, str):
                await gate.refuse_malformed(name, len(raw), request, context)
            # Closed here when the call ends, so that its subscription is released at once.
            async with aclosing(stream(request, context)) as messages:
                async for message in messages:
                    yield message

        return grpc.unary_stream_rpc_method_handler(serve_stream, response_serializer=serialize)

    unary: Callable[[Message, Context], Awaitable[Message]] = implementation

    async def serve_unary(raw: bytes, context: Context) -> Message:
        request = parse(raw)
        if isinstance(request, str):
            await gate.refuse_malformed(name, len(raw), request, context)
        return await unary(request, context)

    return grpc.unary_unary_rpc_method_handler(serve_unary, response_serializer=serialize)
