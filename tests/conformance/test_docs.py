"""The plugin author's page holds a complete gateway and harness, and the README's clause table and
category list agree with the suite and the contract."""

from __future__ import annotations

import inspect
import re
from typing import Any

from broker_plugins import GatewayBase, IBrokerGateway
from conformance_tests import HARNESS_V2_MEMBERS, ConformanceHarness
from conformance_tests._every_method import CATEGORY_OF
from tests.conformance.suite_runs import ROOT

_BLOCK = re.compile(r"```python\n(# my_broker/\w+\.py\n.*?)```", re.DOTALL)


def _skeleton() -> dict[str, Any]:
    """The skeleton's code blocks of docs/conformance.md, run as one module."""
    blocks = _BLOCK.findall((ROOT / "docs" / "conformance.md").read_text())
    assert [block.splitlines()[0] for block in blocks] == ["# my_broker/gateway.py", "# my_broker/harness.py"]
    namespace: dict[str, Any] = {"__name__": "my_broker_skeleton"}
    for block in blocks:
        exec(compile(block, "docs/conformance.md", "exec"), namespace)  # our own docs
    return namespace


def test_the_skeleton_gateway_implements_every_operation() -> None:
    gateway_type = _skeleton()["MyGateway"]

    assert issubclass(gateway_type, GatewayBase)
    assert not inspect.isabstract(gateway_type), sorted(gateway_type.__abstractmethods__)
    assert isinstance(gateway_type(client=object()), IBrokerGateway)


def test_the_skeleton_harness_has_every_member_of_both_versions() -> None:
    harness = _skeleton()["MyHarness"](backend_factory=object, gateway_factory=object)

    assert isinstance(harness, ConformanceHarness)
    assert [name for name in HARNESS_V2_MEMBERS if not hasattr(harness, name)] == []


def test_the_readme_names_the_category_of_every_method() -> None:
    section = (ROOT / "README.md").read_text().partition("### 3. What a call looks like")[2]
    bullet = " ".join(section.partition("- **Categories**:")[2].partition("\n- ")[0].split())
    named: dict[str, set[str]] = {}
    for part in bullet.split(";"):
        methods, _, category = part.partition(" are `")
        named[category.partition("`")[0]] = set(re.findall(r"`(\w+)`", methods))
    for category in ("market_data", "trading", "account"):
        assert named[category] == {method for method, where in CATEGORY_OF.items() if where == category}


def test_the_contract_names_the_category_of_every_method() -> None:
    for method, category in CATEGORY_OF.items():
        assert f"`{category}`" in (getattr(IBrokerGateway, method).__doc__ or ""), method
