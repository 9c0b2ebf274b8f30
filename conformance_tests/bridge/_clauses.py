"""Every clause of the bridge kit: its id, what it needs, how many requests it may send, and the
sentences of docs/bridge-contract.md it checks (quoted verbatim, so a failure can name them).

Plain data, importable without gRPC: `brokerctl` and the docs read it too. Rules are compared with
the contract page with runs of whitespace folded into one space.
"""

from __future__ import annotations

import enum

import attrs

__all__ = ["CLAUSES", "CONTRACT", "MAX_RETRIES", "SETUP_REQUESTS", "Clause", "Needs", "Rule", "clause"]

CONTRACT = "docs/bridge-contract.md"
MAX_RETRIES = 3  # retries of one request refused with RESOURCE_EXHAUSTED and retry-after-ms
SETUP_REQUESTS = 2  # a health check that proves the bridge answers, and the instrument lookup


class Needs(enum.Enum):
    """What a clause needs beyond a reachable bridge; without it the clause skips and says why."""

    NOTHING = "nothing"
    TOKEN = "token"  # noqa: S105 - a need, not a secret: the bridge has tokens and the kit was given one
    PAPER = "paper"  # --bridge-paper: the clause places orders
    BUDGET = "budget"  # --bridge-budget CALLS/SECONDS: the clause exhausts the budget


@attrs.frozen
class Rule:
    """One sentence of the contract, and the section it is in."""

    section: str
    text: str


@attrs.frozen
class Clause:
    """One clause: `requests` bounds what it sends (retries after RESOURCE_EXHAUSTED aside; budget
    clauses give theirs in calls of the budget, `per_budget_call`)."""

    id: str
    title: str
    needs: Needs
    requests: int
    rules: tuple[Rule, ...]
    per_budget_call: int = 0

    def bound(self, budget_calls: int) -> int:
        """Requests this clause may send against a budget of `budget_calls` per period."""
        return self.requests + self.per_budget_call * budget_calls


_AUTH = "3. Authentication"
_HEALTH = "4. Health"
_KEEPALIVE = "5. Keepalive and connections"
_STATUSES = "6. Statuses"
_WELL_FORMED = "7. Well-formed requests"
_MARKET = "8. Market data"
_ORDERS = "9. Orders and de-duplication"
_UPDATES = "10. Order updates: sequences and replay"
_BUDGETS = "11. Budgets"

_R_HEALTH_NAMES = Rule(
    _HEALTH,
    'A bridge serves the standard health service for the names `""`, `broker.bridge.v1.MarketDataService` '
    "and `broker.bridge.v1.TradingService`, each SERVING while it serves.",
)
_R_HEALTH_UNKNOWN = Rule(
    _HEALTH, "An unknown service name is NOT_FOUND (the standard health service does this)."
)
_R_HEALTH_WRONG = Rule(_HEALTH, "Health.Check with a wrong token MUST fail UNAUTHENTICATED.")
_R_HEALTH_NONE = Rule(
    _HEALTH, "With no token a bridge MAY answer (load balancers probe without one) or fail UNAUTHENTICATED."
)
_R_AUTH_REFUSE = Rule(
    _AUTH,
    "A bridge with tokens refuses a missing or wrong token on every broker.bridge.v1 RPC with "
    "UNAUTHENTICATED.",
)
_R_AUTH_FIRST = Rule(
    _AUTH,
    "Authentication comes first: a call without valid credentials gets UNAUTHENTICATED whatever else is "
    "wrong with it, and is not charged to any budget.",
)
_R_AUTH_ECHO = Rule(
    _AUTH, "A bridge never echoes the token: not in status details, not in trailers, not in logs."
)
_R_UNKNOWN_SYMBOL = Rule(
    _MARKET,
    "A well-formed symbol the bridge does not know is NOT_FOUND in GetQuote, GetInstrument, GetCandles and "
    "StreamQuotes.",
)
_R_BAD_INPUT = Rule(_STATUSES, "Bad input never yields UNKNOWN or INTERNAL.")
_R_DETAILS = Rule(
    _STATUSES,
    "Error details quote at most a bounded prefix of any string the client sent (the reference bridge: "
    "40 characters, and its details never exceed 400 characters).",
)
_R_PAGE_SIZE = Rule(
    _MARKET,
    "`page_size` caps one page; 0 is the server maximum, a larger value is lowered to it, not refused. A "
    "page "
    "may hold fewer candles than `page_size`; only an empty `next_page_token` ends the result.",
)
_R_PAGES_JOIN = Rule(
    _MARKET,
    'Pages join without gaps or overlaps, and the range is resolved once: "now", the end of a range without '
    "`end_time`, is fixed at the first page and carried by the page token.",
)
_R_PAGE_TOKEN = Rule(
    _MARKET,
    "With a page token, every field but `page_size` must be as in the request that produced it; a request "
    "with a token the bridge did not issue for those fields is INVALID_ARGUMENT.",
)
_R_SAME_ORDER = Rule(_ORDERS, "Same id and same contents returns the existing order with `duplicate = true`.")
_R_OTHER_CONTENTS = Rule(
    _ORDERS, "Same id with other contents is refused with ALREADY_EXISTS; nothing is created or changed."
)
_R_SERIALISED = Rule(
    _ORDERS,
    "Requests with one id are serialised: a second arriving while the first is in progress waits for it and "
    "gets its result.",
)
_R_FIRST_MESSAGE = Rule(
    _UPDATES,
    "The first StreamOrderUpdates message is sent at once, without waiting for a new update, and its "
    "latest_sequence is the account's latest sequence when the subscription was made.",
)
_R_OUT_OF_RANGE = Rule(
    _UPDATES,
    "OUT_OF_RANGE when `after_sequence` is ahead of the account's latest sequence, or when an update after "
    "it "
    "is no longer retained; a bridge never replays a part and silently skips the rest.",
)
_R_RETRY_FORMAT = Rule(
    _BUDGETS,
    "`retry-after-ms` is an ASCII non-negative decimal number of milliseconds: `digits`, optionally followed "
    "by `.` and digits; an integer is recommended, a fraction allowed (`250`, `12.5`).",
)

CLAUSES: tuple[Clause, ...] = (
    Clause(
        "BK-HEALTH-1",
        "health names are SERVING; an unknown name is NOT_FOUND",
        Needs.NOTHING,
        4,
        (_R_HEALTH_NAMES, _R_HEALTH_UNKNOWN),
    ),
    Clause(
        "BK-HEALTH-2",
        "health refuses a wrong token; without a token it answers or refuses",
        Needs.TOKEN,
        6,
        (_R_HEALTH_WRONG, _R_HEALTH_NONE),
    ),
    Clause(
        "BK-AUTH-1",
        "every RPC refuses a missing or wrong token with UNAUTHENTICATED, before anything else",
        Needs.TOKEN,
        28,
        (_R_AUTH_REFUSE, _R_AUTH_FIRST),
    ),
    Clause(
        "BK-AUTH-2",
        "the token is never echoed",
        Needs.TOKEN,
        5,
        (_R_AUTH_ECHO,),
    ),
    Clause(
        "BK-MD-1",
        "instruments are listed in order, with valid fields; the exchange filter filters",
        Needs.NOTHING,
        2,
        (
            Rule(
                _MARKET,
                "ListInstruments returns every instrument, ordered by symbol, each with a symbol, exchange, "
                "currency and positive tick and lot sizes; with `exchange` set, only those of that exchange.",
            ),
        ),
    ),
    Clause(
        "BK-MD-2",
        "instruments look up as listed; unknown symbols are NOT_FOUND",
        Needs.NOTHING,
        6,
        (Rule(_MARKET, "GetInstrument returns the same instrument as the list does."), _R_UNKNOWN_SYMBOL),
    ),
    Clause(
        "BK-MD-3",
        "a quote names its symbol and time, bid at or below ask",
        Needs.NOTHING,
        1,
        (
            Rule(
                _MARKET,
                "A quote names the symbol asked for, carries its time, and a bid at or below the ask when "
                "both are present.",
            ),
        ),
    ),
    Clause(
        "BK-MD-4",
        "a market calendar, if offered, is usable: IANA zone, ordered sessions within the day, holidays "
        "in range; an unknown exchange is NOT_FOUND",
        Needs.NOTHING,
        2,
        (
            Rule(
                _MARKET,
                "Sessions are local wall-clock times, the same on every trading day (a trading weekday that "
                "is not a holiday), ordered by opening, not overlapping, each within one local day from "
                "`open_second` (inclusive) to `close_second` (exclusive, at most 86,400); `kind` says "
                "pre-market, regular or post-market.",
            ),
            Rule(_MARKET, "an exchange without a calendar is NOT_FOUND."),
        ),
    ),
    Clause(
        "BK-CD-1",
        "candle pages: at most page_size each, ascending on the interval grid, completed, limit in total",
        Needs.NOTHING,
        12,
        (
            Rule(
                _MARKET,
                "A GetCandles result is the candles whose open time lies in [start_time, end_time), "
                "completed ones only, ascending by open time, on the interval's grid",
            ),
            _R_PAGE_SIZE,
        ),
    ),
    Clause(
        "BK-CD-2",
        "candle ranges: [start, end), the first or last `limit`",
        Needs.NOTHING,
        6,
        (
            Rule(
                _MARKET,
                "Without `start_time`, the result is the last `limit` candles before the end (1,000 when "
                "`limit` is absent); with it, the first `limit` candles from the start.",
            ),
        ),
    ),
    Clause(
        "BK-CD-3",
        "page tokens: page_size may change, other fields may not; a foreign token is INVALID_ARGUMENT",
        Needs.NOTHING,
        8,
        (_R_PAGES_JOIN, _R_PAGE_TOKEN, _R_PAGE_SIZE),
    ),
    Clause(
        "BK-CD-4",
        "bad candle arguments are INVALID_ARGUMENT",
        Needs.NOTHING,
        5,
        (
            Rule(
                _MARKET,
                "`limit` is 1 to 1,000,000; anything else is INVALID_ARGUMENT, never clamped.",
            ),
            Rule(
                _WELL_FORMED,
                "Enum fields hold a value the contract defines; UNSPECIFIED is refused where the proto says "
                "so",
            ),
            Rule(_STATUSES, "bad ranges"),
        ),
    ),
    Clause(
        "BK-QS-1",
        "the quote stream sends the requested symbols, oldest first, until cancelled",
        Needs.NOTHING,
        1,
        (
            Rule(
                _MARKET,
                "StreamQuotes sends batches of the requested symbols' quotes, each batch holding every quote "
                "since the previous one, oldest first, and runs until the client cancels it.",
            ),
        ),
    ),
    Clause(
        "BK-QS-2",
        "a quote stream of no symbols is INVALID_ARGUMENT, of an unknown one NOT_FOUND",
        Needs.NOTHING,
        2,
        (Rule(_MARKET, "An empty symbol list is INVALID_ARGUMENT."), _R_UNKNOWN_SYMBOL),
    ),
    Clause(
        "BK-OU-1",
        "the first order-update message comes at once and gives the latest sequence",
        Needs.NOTHING,
        2,
        (_R_FIRST_MESSAGE,),
    ),
    Clause(
        "BK-OU-2",
        "a replay from ahead of the latest sequence is OUT_OF_RANGE",
        Needs.NOTHING,
        1,
        (_R_OUT_OF_RANGE,),
    ),
    Clause(
        "BK-OU-3",
        "updates come in sequence without gaps, and replay after a sequence gives them again",
        Needs.PAPER,
        10,
        (
            Rule(
                _UPDATES,
                "Updates arrive in ascending sequence without gaps or repeats, the replay first, then live "
                "ones.",
            ),
            Rule(
                _UPDATES,
                "`latest_sequence` is at least the sequence of the message's last update and never decreases "
                "along a stream.",
            ),
        ),
    ),
    Clause(
        "BK-ORD-1",
        "an order is placed once: a retry returns it with duplicate = true",
        Needs.PAPER,
        6,
        (_R_SAME_ORDER,),
    ),
    Clause(
        "BK-ORD-2",
        "a client_order_id reused with other contents is ALREADY_EXISTS and changes nothing",
        Needs.PAPER,
        7,
        (_R_OTHER_CONTENTS,),
    ),
    Clause(
        "BK-ORD-3",
        "concurrent attempts with one client_order_id create one order and all get it",
        Needs.PAPER,
        18,
        (_R_SERIALISED,),
    ),
    Clause(
        "BK-ORD-4",
        "cancel and modify: statuses and states",
        Needs.PAPER,
        10,
        (
            Rule(
                _ORDERS,
                "CancelOrder on a working order returns it CANCELED; on an order that no longer works it is "
                "FAILED_PRECONDITION; on an unknown order_id it is NOT_FOUND.",
            ),
            Rule(
                _ORDERS,
                "ModifyOrder changes quantity and/or limit price in place: the order_id stays. On an order "
                "that "
                "no longer works it is FAILED_PRECONDITION; on an unknown order_id it is NOT_FOUND; with "
                "neither "
                "field set it is INVALID_ARGUMENT.",
            ),
        ),
    ),
    Clause(
        "BK-ORD-5",
        "a business rejection is a REJECTED order with a reason",
        Needs.PAPER,
        1,
        (
            Rule(
                _STATUSES,
                "A business rejection of an order is a normal reply with status REJECTED and a reason, not a "
                "failure (section 9).",
            ),
        ),
    ),
    Clause(
        "BK-BUD-1",
        "over the budget: RESOURCE_EXHAUSTED with a retry-after-ms that is true",
        Needs.BUDGET,
        6,
        (
            _R_RETRY_FORMAT,
            Rule(
                _BUDGETS,
                "It says how long to wait: a call made that much later is admitted, if nothing else used the "
                "account's budget meanwhile.",
            ),
        ),
        per_budget_call=2,
    ),
    Clause(
        "BK-BUD-2",
        "the budget holds at the server under concurrent clients",
        Needs.BUDGET,
        0,
        (
            Rule(
                _BUDGETS,
                "The budget holds at the server whatever the concurrency: never more than the budget's calls "
                "in "
                "any window of its period, counted over every connection of the account.",
            ),
        ),
        per_budget_call=9,
    ),
    Clause(
        "BK-BUD-3",
        "concurrent clients each get a share of the budget",
        Needs.BUDGET,
        0,
        (
            Rule(
                _BUDGETS,
                "When several connections share an account's budget and each wants more than its share, each "
                "gets a share: no client starves while another takes the whole budget.",
            ),
        ),
        per_budget_call=9,
    ),
    Clause(
        "BK-BAD-1",
        "bytes that do not parse are INVALID_ARGUMENT",
        Needs.NOTHING,
        7,
        (
            Rule(
                _WELL_FORMED,
                "The bytes are a valid protobuf encoding of the request message and every string is valid "
                "UTF-8.",
            ),
            _R_BAD_INPUT,
        ),
    ),
    Clause(
        "BK-BAD-2",
        "very long ids and symbols are INVALID_ARGUMENT, and not echoed",
        Needs.NOTHING,
        5,
        (_R_DETAILS, _R_BAD_INPUT),
    ),
    Clause(
        "BK-BAD-3",
        "huge and malformed decimals are INVALID_ARGUMENT, checked before the state",
        Needs.NOTHING,
        4,
        (
            Rule(
                _WELL_FORMED,
                "A Decimal a client sends has an exponent between -18 and 18 and a magnitude below 10^18.",
            ),
            Rule(
                _STATUSES,
                "The order of the checks is: authentication, then the budget, then well-formedness of the "
                "request, then the account's state.",
            ),
        ),
    ),
    Clause(
        "BK-BAD-4",
        "unknown enum values and impossible timestamps are INVALID_ARGUMENT",
        Needs.NOTHING,
        4,
        (
            Rule(
                _WELL_FORMED, "A Timestamp lies between 0001-01-01 and 9999-12-31 and has nanos in [0, 1e9)."
            ),
            Rule(_WELL_FORMED, "Enum fields hold a value the contract defines"),
        ),
    ),
    Clause(
        "BK-BAD-5",
        "an oversized request is refused with the documented status, and the connection lives on",
        Needs.NOTHING,
        2,
        (
            Rule(
                "1. Services and versions",
                "a larger request MAY be refused with INVALID_ARGUMENT or RESOURCE_EXHAUSTED",
            ),
            _R_BAD_INPUT,
        ),
    ),
    Clause(
        "BK-BAD-6",
        "orders with bad decimals or enum values are INVALID_ARGUMENT and create nothing",
        Needs.PAPER,
        9,
        (
            Rule(
                _WELL_FORMED, "A request that breaks any of these is INVALID_ARGUMENT, and changes nothing:"
            ),
            _R_BAD_INPUT,
        ),
    ),
    Clause(
        "BK-KA-1",
        "a connection with the contract's client keepalive settings stays up, busy or idle",
        Needs.NOTHING,
        7,
        (
            Rule(
                _KEEPALIVE,
                "A bridge keeps a connection that carries a health check every second, and an idle one, "
                "open: it "
                "does not close connections by age or idleness within minutes.",
            ),
            Rule(
                _KEEPALIVE,
                "A bridge runs gRPC's stock server keepalive enforcement; clients must not rely on anything "
                "looser.",
            ),
        ),
    ),
)

_BY_ID = {entry.id: entry for entry in CLAUSES}


def clause(clause_id: str) -> Clause:
    """The clause `clause_id` (KeyError if there is none)."""
    return _BY_ID[clause_id]
