"""Build hook: the wheel carries the bridge contract, `protos/`, as `grpc_plugin/protos/` package data.

Everything else about the distribution is in pyproject.toml. `protos/` stays where buf, the stub
generator and bridge authors in other languages expect it; this copies its `.proto` files into the
built `grpc_plugin.protos` package, so that `python -m grpc_plugin.protos` finds them in any install.
An editable install copies nothing: `grpc_plugin.protos` then finds the checkout's `protos/`.
"""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

PROTO_SOURCE = Path(__file__).resolve().parent / "protos"
PROTO_PACKAGE = ("grpc_plugin", "protos")


class BuildPyWithProtos(build_py):
    """`build_py`, plus every `protos/**/*.proto` copied under `grpc_plugin/protos/`."""

    def run(self) -> None:
        super().run()
        if not self.editable_mode:
            for source, target in self._protos():
                self.mkpath(str(target.parent))
                self.copy_file(str(source), str(target))

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        outputs = list(super().get_outputs(include_bytecode))
        if not self.editable_mode:
            outputs += [str(target) for _, target in self._protos()]
        return outputs

    def _protos(self) -> list[tuple[Path, Path]]:
        protos = sorted(PROTO_SOURCE.rglob("*.proto"))
        if not protos:
            raise SystemExit(f"no .proto files under {PROTO_SOURCE}: the sdist or checkout is incomplete")
        target = Path(self.build_lib, *PROTO_PACKAGE)
        return [(proto, target / proto.relative_to(PROTO_SOURCE)) for proto in protos]


setup(cmdclass={"build_py": BuildPyWithProtos})
