"""The bridge contract as installed: the `.proto` files of `broker.bridge.v1`, and where they are.

A bridge author who installed `broker-plugins` (in any language's toolchain) generates code from
these files: `protoc -I "$(python -m grpc_plugin.protos)" broker/bridge/v1/*.proto ...`.
`python -m grpc_plugin.protos --files` lists them, one absolute path a line.

In a wheel they sit in this package (the build copies the checkout's `protos/` here); in a source
checkout or an editable install they are read from `protos/` at the top of the checkout.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from broker_plugins import PluginError

__all__ = ["PROTO_PACKAGE_DIR", "main", "proto_files", "proto_path"]

PROTO_PACKAGE_DIR = "broker/bridge/v1"
"""Where the files sit under the proto path, as their `package` and imports say."""

_HERE = Path(__file__).resolve().parent


def _proto_root(package_dir: Path) -> Path:
    candidates = (package_dir, package_dir.parents[1] / "protos")  # installed; then a checkout
    for candidate in candidates:
        if any((candidate / PROTO_PACKAGE_DIR).glob("*.proto")):
            return candidate
    raise PluginError(
        "the bridge contract's .proto files are missing from this installation (looked in "
        + " and ".join(str(c / PROTO_PACKAGE_DIR) for c in candidates)
        + "); reinstall broker-plugins"
    )


def proto_path() -> Path:
    """The directory to give protoc as `-I`: it holds `broker/bridge/v1/*.proto`.

    Raises `PluginError` when the installation lacks them (a broken install).
    """
    return _proto_root(_HERE)


def proto_files() -> list[Path]:
    """Every `.proto` file of the contract, sorted, as absolute paths."""
    return sorted(proto_path().rglob("*.proto"))


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m grpc_plugin.protos [--files]`: print the proto path, or every file."""
    parser = argparse.ArgumentParser(
        prog="python -m grpc_plugin.protos",
        description="Print where the installed bridge contract (.proto files) is.",
    )
    parser.add_argument("--files", action="store_true", help="print each .proto file instead")
    args = parser.parse_args(argv)
    try:
        lines = [str(path) for path in proto_files()] if args.files else [str(proto_path())]
    except PluginError as error:
        parser.exit(1, f"{parser.prog}: {error}\n")
    print("\n".join(lines))
    return 0
