"""BK-ORD (paper accounts only): placing once, reuse of a client_order_id, concurrent attempts, cancel
and modify, rejections. Every order is a one-lot buy limit well under the market, cancelled at the
end; the rejected one names an unknown symbol."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import grpc

from conformance_tests.bridge._check import Check
from conformance_tests.bridge._values import (
    UNKNOWN_SYMBOL,
    WELL_FORMED_UNKNOWN_ORDER,
    decimal_message,
    far_buy,
    fresh_id,
    value,
)
from conformance_tests.bridge._wire import Outcome, describe
from grpc_plugin.generated.broker.bridge.v1 import market_data_pb2 as md
from grpc_plugin.generated.broker.bridge.v1 import trading_pb2 as tr

CONCURRENT = 8
_WORKING = (tr.ORDER_STATUS_PENDING_NEW, tr.ORDER_STATUS_NEW, tr.ORDER_STATUS_PARTIALLY_FILLED)


def _far_buy(check: Check, instrument: md.Instrument) -> tr.PlaceOrderRequest:
    request = md.GetQuoteRequest(symbol=instrument.symbol)
    quote = check.expect(check.call(check.wire.main.market.GetQuote, request), grpc.StatusCode.OK, "GetQuote")
    return far_buy(fresh_id(check.clause.id), instrument, quote.reply.quote)


def _place(check: Check, order: tr.PlaceOrderRequest) -> tr.Order:
    sent = f"PlaceOrder {describe(order)}"
    placed = check.expect(check.call(check.wire.main.trading.PlaceOrder, order), grpc.StatusCode.OK, sent)
    if placed.reply.order.status not in _WORKING:
        status = tr.OrderStatus.Name(placed.reply.order.status)
        check.skip(f"the kit's far buy limit did not stay working ({status}): cannot judge this clause")
    return placed.reply.order  # type: ignore[no-any-return]


def _cancel(check: Check, order_id: str) -> Outcome:
    return check.call(check.wire.main.trading.CancelOrder, tr.CancelOrderRequest(order_id=order_id))


def _matches(order: tr.Order, request: tr.PlaceOrderRequest) -> bool:
    return (
        order.client_order_id == request.client_order_id
        and order.symbol == request.symbol
        and order.side == request.side
        and order.order_type == request.order_type
        and value(order.quantity) == value(request.quantity)
        and value(order.limit_price) == value(request.limit_price)
    )


def test_bk_ord1_an_order_is_placed_once_and_a_retry_returns_it(
    check: Check, instrument: md.Instrument
) -> None:
    order = _far_buy(check, instrument)
    sent = f"PlaceOrder {describe(order)}"
    placed = _place(check, order)
    try:
        if not _matches(placed, order) or not placed.order_id:
            check.fail(sent, describe(placed), note="the order is not the one asked for")
        again = check.call(check.wire.main.trading.PlaceOrder, order)
        check.expect(again, grpc.StatusCode.OK, f"the same {sent} again")
        if not again.reply.duplicate or again.reply.order.order_id != placed.order_id:
            check.fail(f"the same {sent} again", again, note=f"the first created {placed.order_id}")
        for lookup in (
            tr.GetOrderRequest(order_id=placed.order_id),
            tr.GetOrderRequest(client_order_id=order.client_order_id),
        ):
            found = check.call(check.wire.main.trading.GetOrder, lookup)
            check.expect(found, grpc.StatusCode.OK, f"GetOrder {describe(lookup)}")
            if found.reply.order.order_id != placed.order_id:
                check.fail(f"GetOrder {describe(lookup)}", found, note=f"placed as {placed.order_id}")
    finally:
        _cancel(check, placed.order_id)


def test_bk_ord2_a_reused_client_order_id_with_other_contents_is_refused(
    check: Check, instrument: md.Instrument
) -> None:
    order = _far_buy(check, instrument)
    placed = _place(check, order)
    trading = check.wire.main.trading
    try:
        more = tr.PlaceOrderRequest()
        more.CopyFrom(order)
        more.quantity.CopyFrom(decimal_message(value(order.quantity) * 2))
        sell = tr.PlaceOrderRequest()
        sell.CopyFrom(order)
        sell.side = tr.SIDE_SELL
        for other in (more, sell):
            sent = f"PlaceOrder {describe(other)}, the id of {placed.order_id} with other contents"
            check.expect(check.call(trading.PlaceOrder, other), grpc.StatusCode.ALREADY_EXISTS, sent)
        found = check.call(trading.GetOrder, tr.GetOrderRequest(order_id=placed.order_id))
        if not found.ok or not _matches(found.reply.order, order):
            check.fail(
                f"GetOrder(order_id={placed.order_id!r}) after the refused reuses", found, note="it changed"
            )
        listed = check.call(trading.ListOrders, tr.ListOrdersRequest(symbol=order.symbol))
        check.expect(listed, grpc.StatusCode.OK, "ListOrders")
        same = [o.order_id for o in listed.reply.orders if o.client_order_id == order.client_order_id]
        if same != [placed.order_id]:
            check.fail("ListOrders after the refused reuses", f"orders {same} under {order.client_order_id}")
    finally:
        _cancel(check, placed.order_id)


def test_bk_ord3_concurrent_attempts_with_one_client_order_id_create_one_order(
    check: Check, instrument: md.Instrument
) -> None:
    order = _far_buy(check, instrument)
    clients = [check.wire.connect() for _ in range(CONCURRENT)]
    for client in clients:
        grpc.channel_ready_future(client.channel).result(timeout=10)
    check.count(CONCURRENT)
    metadata = check.wire.metadata("auth")
    budget = check.wire.settings.budget
    if budget is not None:
        # The burst spends most of a budget window: let the calls of the clauses before it age out of
        # the window first, or a refusal of one attempt would say nothing about serialisation.
        time.sleep(budget.period)
    with ThreadPoolExecutor(CONCURRENT) as pool:
        outcomes = list(
            pool.map(
                lambda client: check.wire.unary(client.trading.PlaceOrder, order, metadata, 20.0), clients
            )
        )
    sent = f"{CONCURRENT} concurrent PlaceOrder {describe(order)}, one per connection"
    ids = {o.reply.order.order_id for o in outcomes if o.ok}
    try:
        failed = [o for o in outcomes if not o.ok]
        if failed:
            check.fail(sent, failed[0], note=f"{len(failed)} of {CONCURRENT} failed")
        firsts = sum(1 for o in outcomes if not o.reply.duplicate)
        if len(ids) != 1 or firsts != 1:
            check.fail(sent, f"order ids {sorted(ids)}, {firsts} replies with duplicate = false")
        listed = check.call(check.wire.main.trading.ListOrders, tr.ListOrdersRequest(symbol=order.symbol))
        check.expect(listed, grpc.StatusCode.OK, "ListOrders")
        same = [o.order_id for o in listed.reply.orders if o.client_order_id == order.client_order_id]
        if len(same) != 1:
            check.fail(
                f"ListOrders after {sent}", f"{len(same)} orders under {order.client_order_id}: {same}"
            )
    finally:
        for order_id in ids:
            _cancel(check, order_id)


def test_bk_ord4_cancel_and_modify_answer_by_the_state_of_the_order(
    check: Check, instrument: md.Instrument
) -> None:
    trading = check.wire.main.trading
    order = _far_buy(check, instrument)
    placed = _place(check, order)
    order_id = placed.order_id
    lower = value(order.limit_price) - value(instrument.tick_size)
    if lower > 0:
        modify = tr.ModifyOrderRequest(order_id=order_id, limit_price=decimal_message(lower))
        sent = f"ModifyOrder {describe(modify)}"
        changed = check.expect(check.call(trading.ModifyOrder, modify), grpc.StatusCode.OK, sent, rule=1)
        if changed.reply.order.order_id != order_id or value(changed.reply.order.limit_price) != lower:
            check.fail(sent, changed, rule=1, note="the order_id stays and the price changes")
    empty = tr.ModifyOrderRequest(order_id=order_id)
    check.expect(
        check.call(trading.ModifyOrder, empty),
        grpc.StatusCode.INVALID_ARGUMENT,
        f"ModifyOrder {describe(empty)}",
        rule=1,
    )
    cancel = tr.CancelOrderRequest(order_id=order_id)
    cancelled = check.expect(
        check.call(trading.CancelOrder, cancel), grpc.StatusCode.OK, f"CancelOrder {describe(cancel)}"
    )
    if cancelled.reply.order.status != tr.ORDER_STATUS_CANCELED:
        check.fail(f"CancelOrder {describe(cancel)}", cancelled)
    check.expect(
        check.call(trading.CancelOrder, cancel),
        grpc.StatusCode.FAILED_PRECONDITION,
        f"CancelOrder {describe(cancel)} again",
    )
    again = tr.ModifyOrderRequest(order_id=order_id, quantity=decimal_message(value(order.quantity) * 2))
    check.expect(
        check.call(trading.ModifyOrder, again),
        grpc.StatusCode.FAILED_PRECONDITION,
        f"ModifyOrder {describe(again)} of the cancelled order",
        rule=1,
    )
    unknown_cancel = tr.CancelOrderRequest(order_id=WELL_FORMED_UNKNOWN_ORDER)
    check.expect(
        check.call(trading.CancelOrder, unknown_cancel),
        grpc.StatusCode.NOT_FOUND,
        f"CancelOrder {describe(unknown_cancel)}",
    )
    unknown_modify = tr.ModifyOrderRequest(order_id=WELL_FORMED_UNKNOWN_ORDER, quantity=decimal_message(1))
    check.expect(
        check.call(trading.ModifyOrder, unknown_modify),
        grpc.StatusCode.NOT_FOUND,
        f"ModifyOrder {describe(unknown_modify)}",
        rule=1,
    )


def test_bk_ord5_a_business_rejection_is_a_rejected_order_with_a_reason(check: Check) -> None:
    order = tr.PlaceOrderRequest(
        client_order_id=fresh_id(check.clause.id),
        symbol=UNKNOWN_SYMBOL,
        side=tr.SIDE_BUY,
        order_type=tr.ORDER_TYPE_MARKET,
        quantity=decimal_message(1),
    )
    sent = f"PlaceOrder {describe(order)} (an unknown symbol)"
    outcome = check.expect(check.call(check.wire.main.trading.PlaceOrder, order), grpc.StatusCode.OK, sent)
    placed = outcome.reply.order
    if placed.status != tr.ORDER_STATUS_REJECTED or not placed.reject_reason:
        check.fail(sent, outcome, note="a REJECTED order with a non-empty reject_reason")
