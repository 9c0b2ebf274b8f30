"""The distributions: the sdist is the whole project, the wheel carries the bridge contract.

The sdist is built from a copy of the source tree, and the wheel from that sdist (as pip does), with
the environment's setuptools and no build isolation (nothing is downloaded). The checks are pure
functions over archive listings, so each is also run on a listing that is deliberately wrong.
"""

from __future__ import annotations

import email.parser
import os
import runpy
import shutil
import subprocess
import sys
import tarfile
import textwrap
import zipfile
from collections.abc import Iterable
from pathlib import Path

import pytest

from broker_plugins import PluginError
from grpc_plugin import protos

ROOT = Path(__file__).resolve().parents[1]
PROTO_ROOT = ROOT / "protos"
PYTHONS = ("3.10", "3.11", "3.12", "3.13")
SDIST_MUST_HOLD = (
    "pyproject.toml",
    "setup.py",
    "MANIFEST.in",
    "README.md",
    "LICENSE",
    "protos/buf.yaml",
    "tests/test_packaging.py",
    "tests/bridge/test_generated.py",
    "scripts/generate_stubs.py",  # tests/bridge/test_generated.py runs it
    "examples/memory_broker/pyproject.toml",
    "examples/qt_desktop/pyproject.toml",
    "examples/qt_desktop/tests/test_desktop.py",
    "docs/qt-desktop.png",
)
NEVER_SHIPPED = ("__pycache__", ".venv", ".git/", ".pyc", "benchmarks/results/", ".coverage", "/build/")
"""Parts of names only a local run leaves behind (the sdist's own top-level .egg-info is expected)."""

BUILD = textwrap.dedent(
    """
    import os, sys, tarfile
    from setuptools import build_meta

    source, out = sys.argv[1], sys.argv[2]
    os.chdir(source)
    sdist = build_meta.build_sdist(out)
    with tarfile.open(os.path.join(out, sdist)) as archive:
        # The "data" filter where this Python has it (3.10.12+): a built sdist is trusted anyway.
        safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        archive.extractall(os.path.join(out, "unpacked"), **safe)
    os.chdir(os.path.join(out, "unpacked", sdist[: -len(".tar.gz")]))
    wheel = build_meta.build_wheel(out)
    print(sdist)
    print(wheel)
    """
)


def contract_files() -> dict[str, bytes]:
    """The checkout's .proto files by path under protos/, with their bytes."""
    return {p.relative_to(PROTO_ROOT).as_posix(): p.read_bytes() for p in sorted(PROTO_ROOT.rglob("*.proto"))}


def wheel_problems(files: dict[str, bytes], metadata: str) -> list[str]:
    """What is wrong with a wheel, given its files (path -> bytes) and its METADATA text."""
    problems = []
    for name, content in contract_files().items():
        shipped = files.get(f"grpc_plugin/protos/{name}")
        if shipped is None:
            problems.append(f"grpc_plugin/protos/{name} is missing")
        elif shipped != content:
            problems.append(f"grpc_plugin/protos/{name} differs from protos/{name}")
    for name in ("grpc_plugin/protos/__init__.py", "grpc_plugin/protos/__main__.py", "grpc_plugin/py.typed"):
        if name not in files:
            problems.append(f"{name} is missing")
    top_level = {name.split("/", 1)[0] for name in files if not name.split("/", 1)[0].endswith(".dist-info")}
    if top_level != {"broker_plugins", "grpc_plugin", "conformance_tests"}:
        problems.append(f"the wheel installs {sorted(top_level)}, not just the three packages")
    classifiers = email.parser.Parser().parsestr(metadata).get_all("Classifier") or []
    problems += [
        f"no classifier for Python {version}"
        for version in PYTHONS
        if f"Programming Language :: Python :: {version}" not in classifiers
    ]
    return problems


def sdist_problems(names: Iterable[str]) -> list[str]:
    """What is wrong with an sdist, given its member names (without the `name-version/` prefix)."""
    names = set(names)
    problems = [f"{name} is missing" for name in SDIST_MUST_HOLD if name not in names]
    problems += [f"protos/{name} is missing" for name in contract_files() if f"protos/{name}" not in names]
    tests = {name for name in names if name.startswith("tests/") and name.endswith(".py")}
    checkout_tests = {p.relative_to(ROOT).as_posix() for p in (ROOT / "tests").rglob("*.py")}
    problems += [f"{name} is missing" for name in sorted(checkout_tests - tests)]
    problems += [f"{name} should not be shipped" for name in sorted(names) if _left_behind(name)]
    return problems


def _left_behind(name: str) -> bool:
    return any(part in name for part in NEVER_SHIPPED) or (
        name.startswith("examples/") and ".egg-info" in name
    )


def _copy_source(target: Path) -> None:
    ignored = shutil.ignore_patterns(
        ".git", ".venv*", "__pycache__", "build", "dist", "*.egg-info", ".*_cache"
    )
    shutil.copytree(ROOT, target, ignore=ignored)
    # What a stray local run leaves behind must not reach the sdist either.
    (target / "benchmarks" / "results").mkdir(parents=True, exist_ok=True)
    (target / "benchmarks" / "results" / "local.json").write_text("{}")


@pytest.fixture(scope="module")
def distributions(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(sdist, wheel), built as described in the module docstring."""
    scratch = tmp_path_factory.mktemp("dist")
    _copy_source(scratch / "source")
    out = scratch / "out"
    out.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")} | {
        "PYTHONDONTWRITEBYTECODE": "1"
    }
    built = subprocess.run(
        [sys.executable, "-c", BUILD, str(scratch / "source"), str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    sdist, wheel = built.stdout.splitlines()[-2:]
    return out / sdist, out / wheel


def test_the_wheel_ships_the_contract_and_says_which_pythons(distributions: tuple[Path, Path]) -> None:
    with zipfile.ZipFile(distributions[1]) as wheel:
        files = {name: wheel.read(name) for name in wheel.namelist() if not name.endswith("/")}
    metadata = next(content for name, content in files.items() if name.endswith(".dist-info/METADATA"))
    assert wheel_problems(files, metadata.decode()) == []


def test_the_sdist_is_the_whole_project(distributions: tuple[Path, Path]) -> None:
    with tarfile.open(distributions[0]) as sdist:
        names = [member.name.split("/", 1)[1] for member in sdist.getmembers() if member.isfile()]
    assert sdist_problems(names) == []


def test_python_m_grpc_plugin_protos_prints_the_installed_contract(
    distributions: tuple[Path, Path], tmp_path: Path
) -> None:
    with zipfile.ZipFile(distributions[1]) as wheel:
        wheel.extractall(tmp_path)
    env = os.environ | {"PYTHONPATH": str(tmp_path)}  # the unpacked wheel first, its dependencies after
    shown = subprocess.run(
        [sys.executable, "-m", "grpc_plugin.protos", "--files"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
        check=True,
    ).stdout.splitlines()
    expected = [str(tmp_path / "grpc_plugin" / "protos" / name) for name in contract_files()]
    assert shown == expected


# -- the checks themselves fail on broken distributions ---------------------------------------------


def good_wheel() -> tuple[dict[str, bytes], str]:
    files = {f"grpc_plugin/protos/{name}": content for name, content in contract_files().items()}
    others = (
        "grpc_plugin/protos/__init__.py",
        "grpc_plugin/protos/__main__.py",
        "grpc_plugin/py.typed",
        "broker_plugins/__init__.py",
        "conformance_tests/__init__.py",
        "broker_plugins-0.1.0.dist-info/METADATA",
    )
    files |= dict.fromkeys(others, b"")
    metadata = "Name: broker-plugins\n" + "".join(
        f"Classifier: Programming Language :: Python :: {v}\n" for v in PYTHONS
    )
    return files, metadata


def test_wheel_checks_pass_a_good_wheel_and_fail_broken_ones() -> None:
    files, metadata = good_wheel()
    assert wheel_problems(files, metadata) == []

    without_trading = {k: v for k, v in files.items() if not k.endswith("trading.proto")}
    assert wheel_problems(without_trading, metadata) == [
        "grpc_plugin/protos/broker/bridge/v1/trading.proto is missing"
    ]
    stale = files | {"grpc_plugin/protos/broker/bridge/v1/common.proto": b"syntax = 'proto2';"}
    assert wheel_problems(stale, metadata) == [
        "grpc_plugin/protos/broker/bridge/v1/common.proto differs from protos/broker/bridge/v1/common.proto"
    ]
    no_main = {k: v for k, v in files.items() if k != "grpc_plugin/protos/__main__.py"}
    assert wheel_problems(no_main, metadata) == ["grpc_plugin/protos/__main__.py is missing"]
    with_tests = files | {"tests/__init__.py": b""}
    assert wheel_problems(with_tests, metadata) == [
        "the wheel installs ['broker_plugins', 'conformance_tests', 'grpc_plugin', 'tests'], "
        "not just the three packages"
    ]
    no_313 = metadata.replace("Classifier: Programming Language :: Python :: 3.13\n", "")
    assert wheel_problems(files, no_313) == ["no classifier for Python 3.13"]


def test_sdist_checks_pass_a_good_sdist_and_fail_broken_ones() -> None:
    names = {*SDIST_MUST_HOLD, *(f"protos/{name}" for name in contract_files())}
    names |= {p.relative_to(ROOT).as_posix() for p in (ROOT / "tests").rglob("*.py")}
    assert sdist_problems(names) == []

    assert sdist_problems(names - {"examples/qt_desktop/pyproject.toml"}) == [
        "examples/qt_desktop/pyproject.toml is missing"
    ]
    assert sdist_problems(names - {"protos/broker/bridge/v1/market_data.proto"}) == [
        "protos/broker/bridge/v1/market_data.proto is missing"
    ]
    assert sdist_problems(names - {"tests/core/test_entities.py"}) == [
        "tests/core/test_entities.py is missing"
    ]
    assert sdist_problems(names | {"tests/__pycache__/x.cpython-311.pyc"}) == [
        "tests/__pycache__/x.cpython-311.pyc should not be shipped"
    ]
    assert sdist_problems(names | {"benchmarks/results/run.json"}) == [
        "benchmarks/results/run.json should not be shipped"
    ]
    assert sdist_problems(names | {"examples/qt_desktop/src/qt_desktop_example.egg-info/PKG-INFO"}) == [
        "examples/qt_desktop/src/qt_desktop_example.egg-info/PKG-INFO should not be shipped"
    ]
    assert sdist_problems(names | {"broker_plugins.egg-info/PKG-INFO"}) == []  # setuptools' own


# -- proto_path() in each layout ---------------------------------------------------------------------


def lay_out(root: Path, files: Iterable[str]) -> None:
    for name in files:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("syntax = 'proto3';")


def test_proto_path_prefers_the_installed_copy_then_the_checkout(tmp_path: Path) -> None:
    package = tmp_path / "site" / "grpc_plugin" / "protos"
    lay_out(package, ["broker/bridge/v1/common.proto"])
    assert protos._proto_root(package) == package

    checkout = tmp_path / "checkout"
    lay_out(checkout, ["protos/broker/bridge/v1/common.proto"])
    (checkout / "grpc_plugin" / "protos").mkdir(parents=True)
    assert protos._proto_root(checkout / "grpc_plugin" / "protos") == checkout / "protos"

    nowhere = tmp_path / "broken" / "grpc_plugin" / "protos"
    nowhere.mkdir(parents=True)
    with pytest.raises(PluginError, match=r"missing from this installation.*reinstall broker-plugins"):
        protos._proto_root(nowhere)


def test_proto_path_here_is_the_checkout_contract() -> None:
    assert protos.proto_path() == PROTO_ROOT
    assert [p.relative_to(PROTO_ROOT).as_posix() for p in protos.proto_files()] == list(contract_files())


def test_python_m_grpc_plugin_protos(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "argv", ["grpc_plugin.protos"])
    with pytest.raises(SystemExit) as exited:
        # run_path, not run_module: under pytest's import hook run_module cannot load a __main__.
        runpy.run_path(str(Path(protos.__file__).with_name("__main__.py")), run_name="__main__")
    assert exited.value.code == 0
    assert capsys.readouterr().out == f"{PROTO_ROOT}\n"

    assert protos.main(["--files"]) == 0
    assert capsys.readouterr().out.splitlines() == [str(p) for p in protos.proto_files()]


def test_python_m_grpc_plugin_protos_on_a_broken_install(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(protos, "_HERE", tmp_path / "grpc_plugin" / "protos")
    with pytest.raises(SystemExit) as exited:
        protos.main([])
    assert exited.value.code == 1
    assert "reinstall broker-plugins" in capsys.readouterr().err
