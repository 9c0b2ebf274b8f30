"""The benchmark plumbing: sides take turns, goals judge the right figure, results say what ran."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path

from benchmarks._common import Row, alternate, at_least, at_most, environment, ratio_at_most, report
from benchmarks.bench_reconnect import paced_bound


async def test_sides_take_turns_in_reversed_order_every_other_round() -> None:
    order: list[str] = []

    def side(name: str) -> Callable[[], Awaitable[float]]:
        async def run() -> float:
            order.append(name)
            return float(len(order))

        return run

    samples = await alternate({"bare": side("bare"), "gateway": side("gateway")}, 4)
    assert order == ["bare", "gateway", "gateway", "bare", "bare", "gateway", "gateway", "bare"]
    assert samples == {"bare": [1.0, 4.0, 5.0, 8.0], "gateway": [2.0, 3.0, 6.0, 7.0]}


def test_a_goal_judges_the_ratio_or_the_gateway_figure() -> None:
    assert Row("r", 10.0, 10.9, "ms", ratio_at_most(1.1)).as_json()["goal_met"] is True
    assert Row("r", 10.0, 11.2, "ms", ratio_at_most(1.1)).as_json()["goal_met"] is False
    assert Row("a", 100.0, 0.9, "%", at_most(1.0)).as_json()["goal_met"] is True  # bare plays no part
    assert Row("a", None, 1.1, "%", at_most(1.0)).as_json()["goal_met"] is False
    assert Row("t", None, 199_999.0, "quotes/s", at_least(200_000)).as_json()["goal_met"] is False
    assert Row("n", None, None, "s", at_most(1.0)).as_json()["goal_met"] is None
    assert Row("z", 0.0, 1.0, "s").ratio is None


def test_results_record_the_commit_and_the_versions(tmp_path: Path) -> None:
    path = tmp_path / "figures.json"
    report("demo", "Demo", [Row("row", 1.0, 2.0, "ms", ratio_at_most(1.5))], path, {"rounds": 3})
    document = json.loads(path.read_text())
    assert document["rows"][0]["ratio"] == 2.0
    assert document["rows"][0]["goal_met"] is False
    for key in ("commit", "python", "grpcio", "protobuf"):
        assert document["environment"][key] == environment()[key]
    assert len(document["environment"]["commit"]) == 40


def test_the_reconnect_bound_follows_grpc_backoff_with_the_gateway_settings() -> None:
    # Default backoff 0.1 s growing 1.6x, capped at 0.3 s, less up to 20% jitter: attempts at 0,
    # 0.08, 0.208, 0.413, 0.653, 0.893, 1.133 s ...
    assert paced_bound(0.05) == 1
    assert paced_bound(1.0) == 6
    assert paced_bound(1.3) == 7
