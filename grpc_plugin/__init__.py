"""The gRPC broker gateway, its generated stubs and the reference bridge server."""

__all__: list[str] = []
