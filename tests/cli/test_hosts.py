"""The CLI as a host of any plugin: the embedded-backend hook, plugin listing, errors, Ctrl-C.

These run `main(argv)` in-process on a registry holding an inline plugin (the in-memory gateway),
so nothing here depends on gRPC.
"""

from __future__ import annotations

from decimal import Decimal

from broker_plugins import BrokerRegistry, hookimpl
from broker_plugins.cli import ExitCode
from tests.cli.conftest import RunCli
from tests.cli.memory_plugin import BrokenPlugin, ExplodingGateway, MemoryBackend, MemoryPlugin


def registry_with(*plugins: object) -> BrokerRegistry:
    registry = BrokerRegistry(load_entry_points=False)
    for plugin in plugins:
        registry.register_plugin(plugin)
    return registry


def test_the_embedded_default_comes_from_the_hook_of_the_chosen_gateway(cli: RunCli) -> None:
    backend = MemoryBackend()
    result = cli(
        "--gateway", "memory", "--json", "quote", "ACME", registry=registry_with(MemoryPlugin(backend))
    )
    assert result.code == ExitCode.OK, result.err
    assert "using the in-memory test backend" in result.err
    [quote] = result.json()
    assert quote["symbol"] == "ACME"
    assert Decimal(quote["ask"]) > Decimal(quote["bid"])
    assert (backend.entered, backend.exited) == (1, 1)


def test_a_gateway_without_an_embedded_backend_asks_for_a_target(cli: RunCli) -> None:
    result = cli("--gateway", "memory", "balance", registry=registry_with(MemoryPlugin(backend=None)))
    assert result.code == ExitCode.PLUGIN
    assert "no plugin provides an embedded backend for gateway 'memory'" in result.err
    assert "give its options or configure a connection" in result.err


def test_a_backend_of_the_wrong_shape_is_a_plugin_error(cli: RunCli) -> None:
    result = cli("--gateway", "memory", "balance", registry=registry_with(MemoryPlugin(backend=object())))
    assert result.code == ExitCode.PLUGIN
    assert "has no running() and serve()" in result.err


def test_an_unknown_gateway_is_a_plugin_error(cli: RunCli) -> None:
    result = cli(
        "--gateway", "nope", "--target", "127.0.0.1:9", "quote", "A", registry=registry_with(MemoryPlugin())
    )
    assert result.code == ExitCode.PLUGIN
    assert "no gateway named 'nope' (available: memory); so the command line cannot be read" in result.err


def test_plugins_lists_gateways_and_plugins_that_failed(cli: RunCli) -> None:
    registry = registry_with(MemoryPlugin(MemoryBackend()), BrokenPlugin())
    result = cli("plugins", "--json", registry=registry)
    assert result.code == ExitCode.OK
    document = result.json()
    assert isinstance(document, dict)
    [gateway] = document["gateways"]
    assert gateway["name"] == "memory"
    assert gateway["capabilities"] == ["quote_stream"]
    assert gateway["embedded_backend"] is True
    [failed] = document["failed"]
    assert "the vendor SDK is not installed" in failed["error"]
    text = cli("plugins", registry=registry).out
    assert text.splitlines()[0].split() == ["GATEWAY", "PLUGIN", "DISTRIBUTION", "EMBEDDED", "CAPABILITIES"]
    assert "Failed to load:" in text


def test_serve_hands_its_arguments_to_the_backend(cli: RunCli) -> None:
    backend = MemoryBackend()
    result = cli(
        "--gateway",
        "memory",
        "serve",
        "--port",
        "7",
        "--token",
        "x",
        registry=registry_with(MemoryPlugin(backend)),
    )
    assert result.code == ExitCode.OK
    assert backend.served == [["--port", "7", "--token", "x"]]


def test_an_unexpected_error_is_one_line_and_a_traceback_only_with_debug(cli: RunCli) -> None:
    registry = registry_with(MemoryPlugin(MemoryBackend(), factory=ExplodingGateway))
    result = cli("--gateway", "memory", "quote", "ACME", registry=registry)
    assert result.code == ExitCode.FAILURE
    [line] = [line for line in result.err.splitlines() if "error" in line]
    assert (
        line
        == "brokerctl: error: unexpected RuntimeError: bug in a plugin (rerun with --debug for the traceback)"
    )
    assert "Traceback" not in result.err
    debug = cli("--gateway", "memory", "quote", "ACME", "--debug", registry=registry)
    assert debug.code == ExitCode.FAILURE
    assert "Traceback (most recent call last)" in debug.err


def test_ctrl_c_stops_the_stream_and_shuts_the_backend_down(cli: RunCli) -> None:
    backend = MemoryBackend(interrupt_after=0.3)
    result = cli("--gateway", "memory", "watch", "ACME", registry=registry_with(MemoryPlugin(backend)))
    assert result.code == ExitCode.INTERRUPTED
    assert result.err.rstrip().endswith("brokerctl: interrupted")
    assert "ACME" in result.out
    assert (backend.entered, backend.exited) == (1, 1)


class FailingHook:
    @hookimpl
    def provide_embedded_backend(self, gateway_name: str) -> object | None:
        raise KeyboardInterrupt


def test_ctrl_c_outside_the_event_loop_is_reported_too(cli: RunCli) -> None:
    result = cli("--gateway", "memory", "serve", registry=registry_with(MemoryPlugin(), FailingHook()))
    assert result.code == ExitCode.INTERRUPTED
