"""pytest11 entry point of the bridge kit: its `--bridge-*` options, inert unless `--bridge-target` is given.

`pytest --pyargs conformance_tests.bridge --bridge-target HOST:PORT` runs the kit against a running
bridge. Without `--bridge-target` the kit's directory is not collected at all, so that a run of the
gateway suite (`pytest --pyargs conformance_tests --broker-gateway NAME`) does not list it. This
module imports neither gRPC nor the kit's clauses' code: it is loaded in every pytest run of an
environment where broker-plugins is installed.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from conformance_tests.bridge._clauses import CLAUSES, MAX_RETRIES, SETUP_REQUESTS, Needs
from conformance_tests.bridge._settings import DEFAULT_TOKEN_ENV, BridgeSettings, SettingsError

__all__ = [
    "SETTINGS",
    "pytest_addoption",
    "pytest_configure",
    "pytest_ignore_collect",
    "pytest_report_header",
    "request_bound",
]

SETTINGS = pytest.StashKey[BridgeSettings]()
_KIT_DIR = Path(__file__).resolve().parent
_KIT_NAMES = ("conformance_tests.bridge", str(_KIT_DIR))


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("bridge-kit", "bridge kit: checks a server of broker.bridge.v1 over the wire")
    group.addoption(
        "--bridge-target", metavar="HOST:PORT", help="the bridge to check (required to run the kit)"
    )
    group.addoption(
        "--bridge-token",
        metavar="TOKEN",
        help=f"bearer token (visible in ps: prefer --bridge-token-env, or set {DEFAULT_TOKEN_ENV})",
    )
    group.addoption(
        "--bridge-token-env", metavar="NAME", help="read the token from environment variable NAME"
    )
    group.addoption("--bridge-token-file", metavar="PATH", help="read the token from a file")
    group.addoption("--bridge-tls-ca", metavar="PEM", help="talk TLS, trusting this CA bundle")
    group.addoption("--bridge-tls-cert", metavar="PEM", help="client certificate chain for mutual TLS")
    group.addoption("--bridge-tls-key", metavar="PEM", help="client private key for mutual TLS")
    group.addoption(
        "--bridge-tls-server-name", metavar="NAME", help="expect this name in the server certificate"
    )
    group.addoption(
        "--bridge-paper",
        action="store_true",
        default=False,
        help="run the clauses that place and cancel orders (a paper account only)",
    )
    group.addoption(
        "--bridge-budget",
        metavar="CALLS/SECONDS",
        help="run the budget clauses, for an account allowed CALLS per SECONDS (its tightest window)",
    )
    group.addoption(
        "--bridge-symbol", metavar="SYMBOL", help="instrument to use (default: the first one listed)"
    )


def pytest_configure(config: pytest.Config) -> None:
    target = config.getoption("bridge_target")
    if target is None:
        if any(str(arg).rstrip("/") in _KIT_NAMES for arg in config.args):
            raise pytest.UsageError("the bridge kit needs --bridge-target HOST:PORT (the bridge to check)")
        return
    try:
        config.stash[SETTINGS] = BridgeSettings.from_options(
            target=target,
            token=config.getoption("bridge_token"),
            token_env=config.getoption("bridge_token_env"),
            token_file=config.getoption("bridge_token_file"),
            tls_ca=config.getoption("bridge_tls_ca"),
            tls_cert=config.getoption("bridge_tls_cert"),
            tls_key=config.getoption("bridge_tls_key"),
            tls_server_name=config.getoption("bridge_tls_server_name"),
            paper=config.getoption("bridge_paper"),
            budget=config.getoption("bridge_budget"),
            symbol=config.getoption("bridge_symbol"),
        )
    except SettingsError as error:
        raise pytest.UsageError(str(error)) from None


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    if SETTINGS in config.stash:
        return None
    path = collection_path.resolve()
    return True if path == _KIT_DIR or _KIT_DIR in path.parents else None


def request_bound(settings: BridgeSettings) -> int:
    """How many requests the clauses that can run send at most, retries aside."""
    runnable = {
        Needs.NOTHING: True,
        Needs.TOKEN: settings.token is not None,
        Needs.PAPER: settings.paper,
        Needs.BUDGET: settings.budget is not None,
    }
    calls = settings.budget.calls if settings.budget else 0
    # BK-BUD-2 and BK-BUD-3 judge one measurement between them.
    shared = next((c for c in CLAUSES if c.id == "BK-BUD-3"), None)
    return SETUP_REQUESTS + sum(c.bound(calls) for c in CLAUSES if runnable[c.needs] and c is not shared)


def pytest_report_header(config: pytest.Config) -> list[str] | None:
    settings = config.stash.get(SETTINGS, None)
    if settings is None:
        return None
    enabled = [
        f"token {'yes' if settings.token else 'no'}",
        f"tls {'yes' if settings.tls else 'no'}",
        f"paper orders {'yes' if settings.paper else 'no (--bridge-paper)'}",
        f"budget {settings.budget or 'not checked (--bridge-budget CALLS/SECONDS)'}",
    ]
    return [
        f"bridge kit: {settings.target}; " + ", ".join(enabled),
        f"bridge kit: at most {request_bound(settings)} requests, plus at most {MAX_RETRIES} retries of a "
        "request refused with RESOURCE_EXHAUSTED, each after the wait it advises",
    ]
