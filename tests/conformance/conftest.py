"""The suite's runs for the self-test, started together once per session, and the example plugin
importable from its source tree (the broken gateways are built on it).

CI installs the example only for `.ci/conformance.sh`, as an outsider would; the project's own tests
use the source directly, so they neither need nor see an installed copy.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conformance.suite_plan import planned_runs
from tests.conformance.suite_runs import EXAMPLE, StartedRun

if str(EXAMPLE / "src") not in sys.path:
    sys.path.insert(0, str(EXAMPLE / "src"))


_HERE = Path(__file__).parent
_WANTED = pytest.StashKey[bool]()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Within this directory, the tests that wait for a suite run go last (the runs start with the
    directory's first test, and the others run meanwhile), all on one test worker."""
    ours = [index for index, item in enumerate(items) if _HERE in Path(item.path).parents]
    if not ours:
        return
    block = [items[index] for index in ours]
    waiting = [item for item in block if "suite_runs" in getattr(item, "fixturenames", ())]
    for item in waiting:
        # One test worker for them all: the runs start once per worker, and twenty suite processes
        # side by side on two cores would only measure each other.
        item.add_marker(pytest.mark.xdist_group("conformance-runs"))
    others = [item for item in block if item not in waiting]
    for index, item in zip(ours, others + waiting, strict=True):
        items[index] = item
    config.stash[_WANTED] = bool(waiting)


@pytest.fixture(scope="session")
def suite_runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, StartedRun]]:
    """Every planned run of the suite, started side by side the first time one is asked for."""
    started = {run.name: run.start(tmp_path_factory.mktemp(run.name)) for run in planned_runs()}
    yield started
    for run in started.values():
        run.stop()


@pytest.fixture(autouse=True)
def _runs_under_way(request: pytest.FixtureRequest) -> None:
    """When some test will wait for the suite runs, the first test of this directory starts them."""
    if request.config.stash.get(_WANTED, False):
        request.getfixturevalue("suite_runs")
