"""The standard health service, with the contract's rule for credentials.

A wrong token is refused (UNAUTHENTICATED) like on every other call; a missing one is let through,
since load balancers probe without one. The gateway always sends its token, so a bridge whose
token it does not know never looks healthy to it.
"""

from __future__ import annotations

import grpc
import grpc.aio
from grpc_health.v1 import health, health_pb2

from grpc_plugin.bridge._auth import TokenCheck

__all__ = ["HEALTH_REFUSAL", "AuthenticatedHealth"]

HEALTH_REFUSAL = "wrong bearer token: send 'authorization: Bearer <token>' metadata, or none"

_Context = grpc.aio.ServicerContext[health_pb2.HealthCheckRequest, health_pb2.HealthCheckResponse]


class AuthenticatedHealth(health.aio.HealthServicer):
    """`grpc.health.v1.Health` that refuses a wrong token."""

    def __init__(self, tokens: TokenCheck) -> None:
        super().__init__()
        self._tokens = tokens

    async def Check(
        self, request: health_pb2.HealthCheckRequest, context: _Context
    ) -> health_pb2.HealthCheckResponse:
        """The serving status of one service name (NOT_FOUND for an unknown one)."""
        if self._tokens.refuses(context.invocation_metadata()):
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, HEALTH_REFUSAL)
        return await super().Check(request, context)

    async def Watch(self, request: health_pb2.HealthCheckRequest, context: _Context) -> None:
        """The serving status of one service name, and every change of it."""
        if self._tokens.refuses(context.invocation_metadata()):
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, HEALTH_REFUSAL)
        await super().Watch(request, context)
