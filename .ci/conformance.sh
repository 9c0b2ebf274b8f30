#!/usr/bin/env bash
# Install the example third-party plugin (examples/memory_broker) into the venv given as $1 with pip,
# and run the conformance suite on it as an outsider would: its own test module, from its own
# directory and pytest configuration; then by gateway name, with no test code at all.
#
# The example is uninstalled again on exit (unless it was installed before), so later test runs in
# the same venv see only the project's own plugins.
set -euo pipefail

venv="${1:?usage: .ci/conformance.sh VENV_DIR (for example .venv-ci)}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="$(cd "$venv" && pwd)/bin/python"
example="$root/examples/memory_broker"
dist="memory-broker-example"
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_PROGRESS_BAR=off PYTHONDONTWRITEBYTECODE=1

if "$python" -m pip show -q "$dist" >/dev/null 2>&1; then
    echo "conformance: $dist is already installed in $venv; it stays installed"
else
    trap '"$python" -m pip uninstall -q -y "$dist"' EXIT
fi

echo "conformance: pip install $example[test] into $venv"
"$python" -m pip install -q "$example[test]"
rm -rf "$example/build" "$example/src/"*.egg-info  # what setuptools leaves in the source tree

cd "$example"
echo "conformance: the example's own test module"
"$python" -m pytest -q -p no:cacheprovider tests/test_conformance.py
# The whole suite ran above; by name, a few clauses show that the installed plugin's hook is found.
echo "conformance: by gateway name (pytest --pyargs conformance_tests --broker-gateway memory -k ...)"
"$python" -m pytest -q -p no:cacheprovider --pyargs conformance_tests --broker-gateway memory -k "if1 or lc1_ or rc2"
