"""pytest11 entry point of the conformance suite: inert unless `--broker-gateway` is given.

It adds the `--broker-gateway NAME` option and nothing else. With it, `pytest --pyargs
conformance_tests --broker-gateway NAME` runs the suite on the harness that the plugin providing
gateway NAME ships through the `provide_conformance_harness` hook.
"""

from __future__ import annotations

import pytest

__all__ = ["OPTION", "pytest_addoption", "pytest_configure"]

OPTION = "broker_gateway"


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


def pytest_configure(config: pytest.Config) -> None:
    name = config.getoption(OPTION)
    if name is None:
        return
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
