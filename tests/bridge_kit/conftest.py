"""The bridge subprocess fixture of the bridge tests, for the kit's run against a separate process."""

from tests.bridge.conftest import bridge_processes

__all__ = ["bridge_processes"]
