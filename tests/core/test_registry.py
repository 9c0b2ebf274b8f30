"""BrokerRegistry against real distributions: `*.dist-info` with `entry_points.txt` on sys.path."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from memory_broker import MemoryBrokerGateway

from broker_plugins import (
    BrokerRegistry,
    Capability,
    DuplicateGatewayError,
    IBrokerGateway,
    InvalidRequestError,
    PluginError,
    PluginLoadError,
    RateLimit,
    RegisterGateway,
    UnknownGatewayError,
    hookimpl,
)

GOOD_PLUGIN = """
from broker_plugins import hookimpl
from memory_broker import MemoryBrokerGateway

@hookimpl
def register_broker_gateways(register):
    register(
        "paper", MemoryBrokerGateway, description="in-memory paper gateway", capabilities=["quote_stream"]
    )

@hookimpl
def provide_conformance_harness(gateway_name):
    return {"harness-for": gateway_name} if gateway_name == "paper" else None
"""

BAD_PLUGIN = """
raise RuntimeError("this plugin cannot be imported")
"""

CLASHING_PLUGIN = """
from broker_plugins import hookimpl
from memory_broker import MemoryBrokerGateway

@hookimpl
def register_broker_gateways(register):
    register("paper", MemoryBrokerGateway)
"""


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str, str, str], None]]:
    """Installs tiny plugin distributions into a directory on sys.path, as pip would lay them out."""
    monkeypatch.syspath_prepend(str(tmp_path))
    modules: list[str] = []

    def install(dist: str, plugin: str, source: str) -> None:
        module = f"{dist.replace('-', '_')}_module"
        (tmp_path / f"{module}.py").write_text(textwrap.dedent(source))
        info = tmp_path / f"{dist.replace('-', '_')}-1.2.3.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.2.3\n")
        (info / "entry_points.txt").write_text(f"[broker_plugins]\n{plugin} = {module}\n")
        modules.append(module)

    yield install
    for module in modules:
        sys.modules.pop(module, None)


def only(*plugins: str) -> dict[str, str]:
    """An environment that pins the registry to `plugins`, whatever else is installed."""
    return {"BROKER_PLUGINS_ALLOW": ",".join(plugins)}


def test_a_broken_plugin_is_recorded_and_the_good_one_still_loads(site: Any) -> None:
    site("good-broker", "good", GOOD_PLUGIN)
    site("bad-broker", "bad", BAD_PLUGIN)
    registry = BrokerRegistry(environ=only("good", "bad"))

    assert registry.names() == ["paper"]
    [error] = registry.load_errors
    assert isinstance(error, PluginLoadError)
    assert (error.plugin_name, error.distribution) == ("bad", "bad-broker")
    assert isinstance(error.__cause__, RuntimeError)
    assert "cannot be imported" in str(error)

    [info] = registry.gateways()
    assert (info.name, info.plugin, info.distribution, info.version) == (
        "paper",
        "good",
        "good-broker",
        "1.2.3",
    )
    assert info.capabilities == frozenset({Capability.QUOTE_STREAM})
    assert info.description == "in-memory paper gateway"


def test_strict_mode_raises_on_the_first_broken_plugin(site: Any) -> None:
    site("bad-broker", "bad", BAD_PLUGIN)
    registry = BrokerRegistry(strict=True, environ=only("bad"))
    with pytest.raises(PluginLoadError, match="'bad'"):
        registry.names()


async def test_create_builds_a_new_gateway_each_time_with_the_options(site: Any) -> None:
    site("good-broker", "good", GOOD_PLUGIN)
    registry = BrokerRegistry(environ=only("good"))
    first = registry.create("paper", rate_limits=RateLimit(7, 1.0))
    second = registry.create("paper")
    assert isinstance(first, IBrokerGateway)
    assert first is not second
    assert "7 per 1s" in repr(first.rate_limiter)  # type: ignore[attr-defined]
    async with first as gateway:
        assert (await gateway.get_quote("ACME")).symbol == "ACME"


def test_the_harness_hook_answers_for_its_gateway(site: Any) -> None:
    site("good-broker", "good", GOOD_PLUGIN)
    registry = BrokerRegistry(environ=only("good"))
    assert registry.conformance_harness("paper") == {"harness-for": "paper"}
    assert registry.conformance_harness("other") is None


def test_two_plugins_registering_one_name_are_both_named(site: Any) -> None:
    site("good-broker", "good", GOOD_PLUGIN)
    site("clash-broker", "clash", CLASHING_PLUGIN)
    registry = BrokerRegistry(environ=only("good", "clash"))
    with pytest.raises(DuplicateGatewayError, match="'paper'") as caught:
        registry.create("paper")
    assert sorted(caught.value.plugins) == ["clash", "good"]
    assert "paper" not in registry.names()
    assert any(isinstance(error, DuplicateGatewayError) for error in registry.load_errors)
    with pytest.raises(DuplicateGatewayError):
        BrokerRegistry(strict=True, environ=only("good", "clash")).names()


def test_deny_list_and_allow_list_pin_what_loads(site: Any) -> None:
    site("good-broker", "good", GOOD_PLUGIN)
    site("bad-broker", "bad", BAD_PLUGIN)
    registry = BrokerRegistry(environ={"BROKER_PLUGINS_ALLOW": "good bad", "BROKER_PLUGINS_DENY": "bad"})
    assert registry.names() == ["paper"]
    assert registry.load_errors == ()
    assert BrokerRegistry(environ=only("nothing-installed")).names() == []


def test_unknown_gateway_lists_what_is_available(site: Any) -> None:
    site("good-broker", "good", GOOD_PLUGIN)
    site("bad-broker", "bad", BAD_PLUGIN)
    registry = BrokerRegistry(environ=only("good", "bad"))
    with pytest.raises(
        UnknownGatewayError, match=r"'kiwoom' \(available: paper; 1 plugin\(s\) failed to load\)"
    ):
        registry.create("kiwoom")
    with pytest.raises(LookupError):
        registry.create("kiwoom")


class InlinePlugin:
    """A plugin object a host or a test registers directly, as llm's tests do."""

    def __init__(self, name: str, factory: Callable[..., object]) -> None:
        self.name = name
        self.factory = factory

    @hookimpl
    def register_broker_gateways(self, register: RegisterGateway) -> None:
        register(self.name, self.factory)  # type: ignore[arg-type]


@pytest.fixture
def registry() -> BrokerRegistry:
    return BrokerRegistry(load_entry_points=False)


def test_inline_plugins_register_and_unregister(registry: BrokerRegistry) -> None:
    plugin_name = registry.register_plugin(InlinePlugin("memory", MemoryBrokerGateway), name="inline")
    assert plugin_name == "inline"
    assert registry.names() == ["memory"]
    assert registry.gateways()[0].distribution is None
    registry.unregister_plugin("inline")
    assert registry.names() == []
    with pytest.raises(UnknownGatewayError, match="no plugin named 'inline'"):
        registry.unregister_plugin("inline")


def test_a_factory_that_returns_something_else_is_a_plugin_error(registry: BrokerRegistry) -> None:
    registry.register_plugin(InlinePlugin("odd", lambda **options: object()))
    with pytest.raises(PluginError, match="returned object, which is not an IBrokerGateway"):
        registry.create("odd")


def test_a_factory_that_crashes_is_wrapped_and_a_broker_error_passes_through(
    registry: BrokerRegistry,
) -> None:
    def crashing(**options: object) -> IBrokerGateway:
        raise KeyError("target")

    def picky(**options: object) -> IBrokerGateway:
        raise InvalidRequestError(f"unknown option {next(iter(options))!r}")

    registry.register_plugin(InlinePlugin("crashing", crashing))
    registry.register_plugin(InlinePlugin("picky", picky))
    with pytest.raises(PluginError, match="the factory of gateway 'crashing'") as caught:
        registry.create("crashing")
    assert isinstance(caught.value.__cause__, KeyError)
    with pytest.raises(InvalidRequestError, match="unknown option 'colour'"):
        registry.create("picky", colour="red")


@pytest.mark.parametrize(
    ("name", "factory", "message"),
    [
        ("Bad Name", MemoryBrokerGateway, "gateway name 'Bad Name' is malformed"),
        ("", MemoryBrokerGateway, "gateway name '' is malformed"),
        ("fine", "not callable", "is not callable"),
    ],
)
def test_a_malformed_registration_is_recorded_against_its_plugin(
    registry: BrokerRegistry, name: str, factory: Any, message: str
) -> None:
    registry.register_plugin(InlinePlugin(name, factory), name="sloppy")
    registry.register_plugin(InlinePlugin("memory", MemoryBrokerGateway), name="tidy")
    assert registry.names() == ["memory"]
    [error] = registry.load_errors
    assert isinstance(error, PluginLoadError)
    assert error.plugin_name == "sloppy"
    assert message in str(error)


def test_one_plugin_registering_a_name_twice_is_its_own_error(registry: BrokerRegistry) -> None:
    class Twice:
        @hookimpl
        def register_broker_gateways(self, register: RegisterGateway) -> None:
            register("memory", MemoryBrokerGateway)
            register("memory", MemoryBrokerGateway)

    registry.register_plugin(Twice(), name="twice")
    assert registry.names() == []
    assert "registered gateway 'memory' twice" in str(registry.load_errors[0])
    strict = BrokerRegistry(strict=True, load_entry_points=False)
    strict.register_plugin(Twice(), name="twice")
    with pytest.raises(PluginLoadError, match="twice"):
        strict.names()


def test_a_hookimpl_may_take_no_arguments(registry: BrokerRegistry) -> None:
    class Quiet:
        @hookimpl
        def register_broker_gateways(self) -> None:
            """A plugin that registers nothing (for example, disabled by its own config)."""

    registry.register_plugin(Quiet())
    assert registry.names() == []
    assert registry.load_errors == ()
