"""The error tree: one root, and the builtin each leaf also is."""

from __future__ import annotations

import pytest

import broker_plugins as bp


@pytest.mark.parametrize(
    ("error", "builtin"),
    [
        (bp.BrokerUnavailableError, ConnectionError),
        (bp.BrokerTimeoutError, TimeoutError),
        (bp.AuthenticationError, PermissionError),
        (bp.InvalidRequestError, ValueError),
        (bp.NotFoundError, LookupError),
        (bp.UnknownGatewayError, LookupError),
        (bp.DuplicateGatewayError, ValueError),
        (bp.PluginLoadError, ImportError),
    ],
)
def test_leaves_inherit_the_fitting_builtin(error: type[Exception], builtin: type[Exception]) -> None:
    assert issubclass(error, bp.BrokerError)
    assert issubclass(error, builtin)


@pytest.mark.parametrize("error", [bp.UnknownGatewayError, bp.DuplicateGatewayError, bp.PluginLoadError])
def test_plugin_errors_sit_under_plugin_error(error: type[Exception]) -> None:
    assert issubclass(error, bp.PluginError)


def test_errors_carry_what_a_caller_needs_to_act() -> None:
    assert bp.RateLimitExceededError("slow down", retry_after=0.25).retry_after == 0.25
    unknown = bp.OrderOutcomeUnknownError("lost the reply", client_order_id="abc")
    assert unknown.client_order_id == "abc"
    rejected = bp.OrderRejectedError("no cash", client_order_id="abc", reason="insufficient cash")
    assert (rejected.client_order_id, rejected.reason) == ("abc", "insufficient cash")
    load = bp.PluginLoadError("boom", plugin_name="p", distribution="d")
    assert (load.plugin_name, load.distribution) == ("p", "d")
