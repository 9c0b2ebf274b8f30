"""BK-HEALTH: the standard health service, its names, and its rule for credentials."""

from __future__ import annotations

import secrets

import grpc
from grpc_health.v1 import health_pb2

from conformance_tests.bridge._check import Check

HEALTH_NAMES = ("", "broker.bridge.v1.MarketDataService", "broker.bridge.v1.TradingService")
SERVING = health_pb2.HealthCheckResponse.SERVING


def test_bk_health1_the_health_names_are_serving_and_an_unknown_name_is_not_found(check: Check) -> None:
    health = check.wire.main.health
    for name in HEALTH_NAMES:
        sent = f"Health.Check(service={name!r}) with the kit's credentials"
        outcome = check.expect(
            check.call(health.Check, health_pb2.HealthCheckRequest(service=name)), grpc.StatusCode.OK, sent
        )
        if outcome.reply.status != SERVING:
            check.fail(
                sent, f"status {health_pb2.HealthCheckResponse.ServingStatus.Name(outcome.reply.status)}"
            )
    unknown = health_pb2.HealthCheckRequest(service="bk.kit.NoSuchService")
    check.expect(
        check.call(health.Check, unknown),
        grpc.StatusCode.NOT_FOUND,
        "Health.Check(service='bk.kit.NoSuchService')",
        rule=1,
    )


def test_bk_health2_health_refuses_a_wrong_token_and_answers_or_refuses_without_one(check: Check) -> None:
    health = check.wire.main.health
    wrong = f"Bearer bk-kit-wrong-{secrets.token_hex(8)}"
    for name in HEALTH_NAMES:
        request = health_pb2.HealthCheckRequest(service=name)
        outcome = check.call(health.Check, request, auth=wrong)
        check.expect(
            outcome,
            grpc.StatusCode.UNAUTHENTICATED,
            f"Health.Check(service={name!r}) with a wrong bearer token",
        )
        outcome = check.call(health.Check, request, auth="none")
        sent = f"Health.Check(service={name!r}) without authorization metadata"
        # Any answer will do: whether it says SERVING is BK-HEALTH-1's business.
        check.expect(outcome, (grpc.StatusCode.OK, grpc.StatusCode.UNAUTHENTICATED), sent, rule=1)
