"""BK-OU: the order-update stream: its first message, replay, sequences, OUT_OF_RANGE."""

from __future__ import annotations

import grpc

from conformance_tests.bridge._check import Check
from conformance_tests.bridge._values import far_buy, fresh_id
from conformance_tests.bridge._wire import Outcome, Stream
from grpc_plugin.generated.broker.bridge.v1 import market_data_pb2 as md
from grpc_plugin.generated.broker.bridge.v1 import trading_pb2 as tr

FIRST_MESSAGE_WAIT = 3.0  # "at once", with room for a slow network
UPDATE_WAIT = 10.0


def _first(check: Check, stream: Stream, sent: str) -> tr.StreamOrderUpdatesResponse:
    message = stream.next(FIRST_MESSAGE_WAIT)
    if message is None:
        check.fail(sent, f"no message within {FIRST_MESSAGE_WAIT:g} s")
    if isinstance(message, Outcome):
        check.fail(sent, message)
    return message  # type: ignore[no-any-return]


def test_bk_ou1_the_first_order_update_message_comes_at_once_with_the_latest_sequence(check: Check) -> None:
    sent = "StreamOrderUpdates(from_latest=true)"
    with check.stream(
        check.wire.main.trading.StreamOrderUpdates, tr.StreamOrderUpdatesRequest(from_latest=True)
    ) as stream:
        first = _first(check, stream, sent)
    if first.updates:
        check.fail(
            sent, f"a first message with {len(first.updates)} updates", note="from_latest replays nothing"
        )
    latest = first.latest_sequence
    request = tr.StreamOrderUpdatesRequest(after_sequence=latest)
    sent = f"StreamOrderUpdates(after_sequence={latest}), the latest sequence"
    with check.stream(check.wire.main.trading.StreamOrderUpdates, request) as stream:
        again = _first(check, stream, sent)
    if again.latest_sequence < latest or any(u.sequence <= latest for u in again.updates):
        check.fail(
            sent, f"latest_sequence {again.latest_sequence}, updates {[u.sequence for u in again.updates]}"
        )


def test_bk_ou2_a_replay_from_ahead_of_the_latest_sequence_is_out_of_range(check: Check) -> None:
    ahead = 2**63  # ahead of any account's latest sequence
    request = tr.StreamOrderUpdatesRequest(after_sequence=ahead)
    sent = f"StreamOrderUpdates(after_sequence={ahead}), ahead of any latest sequence"
    with check.stream(check.wire.main.trading.StreamOrderUpdates, request) as stream:
        first = stream.next(FIRST_MESSAGE_WAIT)
    if not isinstance(first, Outcome):
        check.fail(sent, "messages" if first is not None else f"silence for {FIRST_MESSAGE_WAIT:g} s")
    check.expect(first, grpc.StatusCode.OUT_OF_RANGE, sent)


def _collect(check: Check, stream: Stream, sent: str, order_id: str, latest: int) -> list[tr.OrderUpdate]:
    """Updates until the order `order_id` is CANCELED, judging sequences and latest_sequence."""
    updates: list[tr.OrderUpdate] = []
    expected, floor = latest + 1, latest
    while True:
        message = stream.next(UPDATE_WAIT)
        if message is None or isinstance(message, Outcome):
            got = message if message is not None else f"no update for {UPDATE_WAIT:g} s"
            check.fail(sent, got, note=f"waiting for the cancellation of {order_id}")
        if message.latest_sequence < floor or (
            message.updates and message.latest_sequence < message.updates[-1].sequence
        ):
            check.fail(sent, f"latest_sequence {message.latest_sequence} after {floor}", rule=1)
        floor = message.latest_sequence
        for update in message.updates:
            if update.sequence != expected:
                check.fail(sent, f"update {update.sequence} where {expected} was next")
            expected += 1
            updates.append(update)
            if update.order.order_id == order_id and update.event == tr.ORDER_EVENT_CANCELED:
                return updates


def test_bk_ou3_updates_come_in_sequence_and_replay_gives_them_again(
    check: Check, instrument: md.Instrument
) -> None:
    trading = check.wire.main.trading
    quote = check.expect(
        check.call(check.wire.main.market.GetQuote, md.GetQuoteRequest(symbol=instrument.symbol)),
        grpc.StatusCode.OK,
        "GetQuote",
    ).reply.quote
    with check.stream(trading.StreamOrderUpdates, tr.StreamOrderUpdatesRequest(from_latest=True)) as live:
        latest = int(_first(check, live, "StreamOrderUpdates(from_latest=true)").latest_sequence)
        order = far_buy(fresh_id(check.clause.id), instrument, quote)
        placed = check.expect(
            check.call(trading.PlaceOrder, order), grpc.StatusCode.OK, "PlaceOrder (a far buy limit)"
        )
        order_id = placed.reply.order.order_id
        check.expect(
            check.call(trading.CancelOrder, tr.CancelOrderRequest(order_id=order_id)),
            grpc.StatusCode.OK,
            f"CancelOrder(order_id={order_id!r})",
        )
        sent = f"StreamOrderUpdates(from_latest=true) while placing and cancelling {order_id}"
        seen = _collect(check, live, sent, order_id, latest)
    request = tr.StreamOrderUpdatesRequest(after_sequence=latest)
    sent = f"StreamOrderUpdates(after_sequence={latest}), replaying the updates above"
    with check.stream(trading.StreamOrderUpdates, request) as replay:
        again = _collect(check, replay, sent, order_id, latest)
    if [(u.sequence, u.event, u.order.order_id) for u in again] != [
        (u.sequence, u.event, u.order.order_id) for u in seen
    ]:
        check.fail(
            sent,
            f"updates {[u.sequence for u in again]}",
            note=f"live they were {[u.sequence for u in seen]}",
        )
