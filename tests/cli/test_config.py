"""The config file of named connections, and how flags, the environment and the file combine."""

from __future__ import annotations

from pathlib import Path

import pytest

from broker_plugins import GatewayOption
from broker_plugins.cli._config import (
    CliConfig,
    default_config_path,
    load_config,
    parse_config,
)
from broker_plugins.cli._exit import ExitCode, UsageError
from grpc_plugin._config import OPTIONS as GRPC

FULL = """
default = "paper"

[connections.paper]
target = "127.0.0.1:50051"
token_env = "PAPER_TOKEN"
tls = true
ca_cert = "certs/ca.pem"
client_cert = "certs/me.pem"
client_key = "certs/me.key"
server_name = "bridge.internal"
timeout = 2
connect_timeout = 3

[connections.paper.options]
rate_limit_margin = 0.05

[connections.live]
gateway = "memory"
token = "inline"
"""


def parse(text: str, tmp_path: Path) -> CliConfig:
    return parse_config(text, path=tmp_path / "config.toml")


def test_a_full_connection_becomes_gateway_options(tmp_path: Path) -> None:
    config = parse(FULL, tmp_path)
    paper = config.default_connection()
    assert paper is not None
    assert paper.name == "paper"
    # Keys are the grpc gateway's declared options, by name or by flag; the core names none of them.
    assert paper.gateway_options(GRPC, {"PAPER_TOKEN": "s3cret"}) == {
        "rate_limit_margin": 0.05,
        "target": "127.0.0.1:50051",
        "token": "s3cret",
        "tls": True,
        "root_certificates": str(tmp_path / "certs" / "ca.pem"),
        "client_certificate": str(tmp_path / "certs" / "me.pem"),
        "client_key": str(tmp_path / "certs" / "me.key"),
        "server_name_override": "bridge.internal",
        "timeouts": 2.0,
        "connect_timeout": 3.0,
    }
    live = config.connection("live")
    assert live.gateway == "memory"
    secret = GatewayOption("token", secret=True)
    assert live.gateway_options([secret], {}) == {"token": "inline"}
    assert "inline" not in repr(live)  # a token never shows in a repr
    with pytest.raises(UsageError, match=r"gateway 'memory' has no option 'token' \(known: none"):
        live.gateway_options([], {})


def test_a_token_variable_that_is_not_set_is_a_usage_error(tmp_path: Path) -> None:
    paper = parse(FULL, tmp_path).connection("paper")
    with pytest.raises(UsageError, match="PAPER_TOKEN is not set"):
        paper.gateway_options(GRPC, {})


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ("target = 5", "option 'target' must be text, got 5"),
        ("tls = 'maybe'", "option 'tls' must be true or false, got 'maybe'"),
        ("timeout = true", "option 'timeouts' must be a number, got True"),
        ("timeout = 'soon'", "option 'timeouts' must be a number, got 'soon'"),
        ("port = 1", "gateway 'grpc' has no option 'port'"),
        ("token_env = 7", "token_env must name a variable"),
    ],
)
def test_a_value_of_the_wrong_kind_is_refused_naming_the_option(
    tmp_path: Path, table: str, message: str
) -> None:
    settings = parse(f"[connections.a]\n{table}", tmp_path).connection("a")
    with pytest.raises(UsageError, match=message):
        settings.gateway_options(GRPC, {})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("default = [", "not valid TOML"),
        ("colour = 'blue'", "unknown key 'colour'"),
        ("default = 3", "'default' must be a connection name"),
        ("connections = 3", "'connections' must be a table"),
        ("[connections]\na = 3", "connections.a must be a table"),
        ("[connections.a]\ngateway = 3", "connections.a.gateway must be a gateway name"),
        ("[connections.a]\ntarget = [1]", "connections.a.target must be a single value"),
        ("[connections.a]\noptions = 1", "connections.a.options must be a table"),
        ("[connections.a]\ntoken = 'x'\ntoken_env = 'Y'", "not both"),
        ("default = 'nope'\n[connections.a]\ntarget = 'h:1'", "no connection named 'nope'"),
    ],
)
def test_a_bad_config_names_what_is_wrong(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(UsageError, match=message) as caught:
        parse(text, tmp_path)
    assert caught.value.code is ExitCode.USAGE


def test_the_default_connection_is_the_named_one_or_the_only_one(tmp_path: Path) -> None:
    assert CliConfig().default_connection() is None
    single = parse("[connections.only]\ntarget = 'h:1'", tmp_path).default_connection()
    assert single is not None
    assert single.name == "only"
    several = parse("[connections.a]\ntarget = 'h:1'\n[connections.b]\ntarget = 'h:2'", tmp_path)
    with pytest.raises(UsageError, match="choose one with --connection"):
        several.default_connection()
    with pytest.raises(UsageError, match=r"configured: a, b"):
        several.connection("c")


def test_the_config_file_is_found_by_variable_then_xdg_then_home(tmp_path: Path) -> None:
    assert default_config_path({"BROKERCTL_CONFIG": "/etc/b.toml"}) == Path("/etc/b.toml")
    assert default_config_path({"XDG_CONFIG_HOME": "/x"}) == Path("/x/brokerctl/config.toml")
    assert default_config_path({}).parts[-3:] == (".config", "brokerctl", "config.toml")


def test_a_missing_file_is_an_error_only_when_named(tmp_path: Path) -> None:
    assert load_config(tmp_path / "absent.toml", required=False) == CliConfig()
    with pytest.raises(UsageError, match="does not exist"):
        load_config(tmp_path / "absent.toml", required=True)
    with pytest.raises(UsageError, match="cannot read"):
        load_config(tmp_path, required=True)  # a directory
    written = tmp_path / "c.toml"
    written.write_text("[connections.x]\ntarget = 'h:1'\n")
    found = load_config(written, required=True).connection("x")
    assert (found.gateway, dict(found.values), found.base) == ("grpc", {"target": "h:1"}, tmp_path)
