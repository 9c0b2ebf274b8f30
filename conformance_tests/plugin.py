"""pytest11 entry point of the conformance suite: inert unless `--broker-gateway` is given.

It adds the `--broker-gateway NAME` option and nothing else. With it, `pytest --pyargs
conformance_tests --broker-gateway NAME` runs the suite on the harness that the plugin providing
gateway NAME ships through the `provide_conformance_harness` hook.
"""

from __future__ import annotations

import warnings

import pytest

__all__ = ["OPTION", "pytest_addoption", "pytest_configure"]

OPTION = "broker_gateway"
_LOOP_SCOPE = "asyncio_default_fixture_loop_scope"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("broker-conformance", "broker gateway conformance suite")
    group.addoption(
        "--broker-gateway",
        dest=OPTION,
        default=None,
        metavar="NAME",
        help="run the conformance suite (pytest --pyargs conformance_tests) on the harness that the "
        "plugin of gateway NAME provides",
    )


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    name = config.getoption(OPTION)
    if name is None:
        return
    _quiet_loop_scope_warning(config)
    # Imported here, so that a run without the option pays nothing for this plugin.
    from broker_plugins import BrokerRegistry  # noqa: PLC0415

    registry = BrokerRegistry()
    if registry.conformance_harness(name) is None:
        gateways = ", ".join(registry.names()) or "none"
        errors = "".join(f"\n  {error}" for error in registry.load_errors)
        raise pytest.UsageError(
            f"--broker-gateway {name}: no installed plugin provides a conformance harness for gateway "
            f"{name!r} (installed gateways: {gateways}){errors}"
        )


def _quiet_loop_scope_warning(config: pytest.Config) -> None:
    """Run from a directory with no pytest configuration, pytest-asyncio warns that its default loop
    scope is unset. Every async fixture and test of the suite names its loop scope, so that default
    decides nothing in a run of the suite by gateway name: the warning would only be noise."""
    try:
        configured = config.getini(_LOOP_SCOPE)
    except ValueError:  # pytest-asyncio is not installed: the suite will say so when it is imported
        return
    if not configured:
        warnings.filterwarnings(
            "ignore",
            message=f'The configuration option "{_LOOP_SCOPE}" is unset',
            category=pytest.PytestDeprecationWarning,
        )
