"""The error tree: one root, and the builtin each leaf also is."""

from __future__ import annotations

import copy
import inspect
import pickle

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


_EXAMPLE_ARGUMENTS = {
    "client_order_id": "c-1",
    "reason": "insufficient cash",
    "retry_after": 0.25,
    "gateway_name": "paper",
    "plugins": ("one", "two"),
    "plugin_name": "vendor",
    "distribution": "vendor-dist",
}


def _every_error(root: type[bp.BrokerError]) -> list[type[bp.BrokerError]]:
    found = [root]
    for child in root.__subclasses__():
        found.extend(_every_error(child))
    return found


def _example(kind: type[bp.BrokerError]) -> bp.BrokerError:
    if kind.__init__ is Exception.__init__ or kind.__init__ is BaseException.__init__:
        return kind("what went wrong")
    parameters = inspect.signature(kind.__init__).parameters
    keywords = {
        name: _EXAMPLE_ARGUMENTS[name]
        for name, parameter in parameters.items()
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY
    }
    return kind("what went wrong", **keywords)


@pytest.mark.parametrize("kind", _every_error(bp.BrokerError), ids=lambda kind: kind.__name__)
def test_every_error_survives_pickle_and_copy_with_its_attributes(kind: type[bp.BrokerError]) -> None:
    error = _example(kind)
    for twin in (pickle.loads(pickle.dumps(error)), copy.copy(error), copy.deepcopy(error)):
        assert type(twin) is kind
        assert str(twin) == str(error)
        assert twin.args == error.args
        assert vars(twin) == vars(error)
