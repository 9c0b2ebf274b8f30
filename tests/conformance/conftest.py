"""The suite's runs for the self-test, started together once per session, and the example plugin
importable from its source tree (the broken gateways are built on it).

CI installs the example only for `.ci/conformance.sh`, as an outsider would; the project's own tests
use the source directly, so they neither need nor see an installed copy.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest

from tests.conformance.suite_plan import planned_runs
from tests.conformance.suite_runs import EXAMPLE, StartedRun

if str(EXAMPLE / "src") not in sys.path:
    sys.path.insert(0, str(EXAMPLE / "src"))


@pytest.fixture(scope="session")
def suite_runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, StartedRun]]:
    """Every planned run of the suite, started side by side the first time one is asked for."""
    started = {run.name: run.start(tmp_path_factory.mktemp(run.name)) for run in planned_runs()}
    yield started
    for run in started.values():
        run.stop()
