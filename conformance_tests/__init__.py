"""A reusable pytest suite that proves a gateway plugin rate-limits and reconnects correctly."""

__all__: list[str] = []
