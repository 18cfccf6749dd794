"""The price feed actor: USD prices of the configured mints, polled from a Jupiter Price API v3.

What it owns: the polling of ``GET {url}/price/v3?ids=MINT,...`` (answer: ``{mint: {"usdPrice":
float, "blockId": int, "decimals": int, "priceChange24h": float, ...}}``; a mint without a price is
absent), the breaker of that dependency (``price_api``), the validation of every answer, and the
``xorj_price_*`` metrics. It writes into a `PriceBook` and tells a `PriceSubscribers` set; both are
created once by the node and handed to every incarnation, so a restart of the feed forgets neither
the last good prices nor who listens.

Which failure it contains: a price API that is down, slow, stalled or talking garbage.

- Deadlines: every HTTP request runs under ``trio.move_on_after(timeout_s)`` at its call site;
  httpx's own timeouts are only a safety net behind it. A server that accepts the connection and
  never answers costs one poll at most ``timeout_s``.
- Outage: polls go through a `CircuitBreaker`; failed polls back off (`backoff_delay`, never
  faster than ``poll_s``); an open breaker skips polls until it half-opens and one trial poll
  goes out. The breaker opening raises one ``dependency_down`` alert (subject ``price_api``) per
  outage, its closing one ``dependency_up``. The last good prices stay in the book with their
  age: staleness is the book's judgement (``PriceBook.fresh``), and executors stop trading a mint
  whose price is stale (DESIGN section 5).
- Garbage: validated at the edge. An answer that is not JSON or not a JSON object is a failed
  poll (it counts against the breaker) and rejects every mint it should have priced; a mint whose
  entry is not an object with a numeric ``usdPrice`` (a string "NaN" included), whose price is not
  finite or not positive, or which moved more than ``max_jump_pct`` from the last good price is
  rejected alone. A rejected price never enters the book (the old one stays and ages), is counted
  in ``xorj_price_rejected_total{reason}`` and raises a WARNING ``price_rejected`` alert for the
  mint. A genuine move beyond ``max_jump_pct`` is therefore refused too: the mint goes stale and
  the operator decides -- failing closed on a price is what a copy-trading engine must do.
- Staleness: a mint whose price turns stale raises one ``price_stale`` alert, and one INFO
  ``price_fresh`` when a good price comes back -- on the transition only (each incarnation starts
  from "fresh", so a restart re-announces a mint that is still stale). A mint never priced since
  the incarnation started counts as stale once ``stale_s`` has passed.
- History: accepted prices are stored in ``token_prices`` (one batched ``INSERT ... SELECT FROM
  unnest(...) ON CONFLICT DO NOTHING`` per poll, under ``db_timeout_s``). A database error is
  logged and counted (``xorj_price_store_failures_total``), never fatal: the scorer reads this
  history for valuation, and losing the samples of a database outage is acceptable -- valuation
  takes the latest price within its age bound, and the next poll stores fresh ones.
- Fan-out: subscribers get `PricesUpdated` with ``tell_nowait`` after every poll that accepted a
  price (a full mailbox skips it: their mailboxes conflate, only the newest matters -- see
  `conflate_prices`); with a ``publish`` callable the same goes to Redis channel ``xorj:prices``
  as JSON, and a failure there (``OSError``, `PublishFailed`, its deadline) is only logged: Redis
  is fan-out, not the source of truth.

Secrets: the URL may carry an API key; it is only ever shown through ``redact_url``.

Anything else (a bug) escapes ``run`` and the supervisor decides.

May import: the standard library, attrs, httpx, trio, prometheus_client, `supervisors`, `actors`,
`sql`. Never imports `engine`.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import time
from collections.abc import Callable, Hashable, Mapping, Sequence
from decimal import Decimal
from typing import Any, Final

import attrs
import httpx
import trio
from prometheus_client import Counter, Gauge

from actors.actor import Actor
from actors.alerts import Alert, AlertSink, Severity
from actors.database import Database
from actors.fanout import Publish, PublishFailed
from actors.rpc_client import redact_url, scrub
from actors.subscribers import Subscribers
from sql.errors import DatabaseError
from supervisors.backoff import backoff_delay
from supervisors.breaker import BreakerOpen, BreakerPolicy, BreakerState, CircuitBreaker
from supervisors.context import ChildContext
from supervisors.registry import ActorRef

__all__ = [
    "PRICES_CHANNEL",
    "Price",
    "PriceBook",
    "PriceFeed",
    "PriceFeedSettings",
    "PriceSubscribers",
    "PricesUpdated",
    "PublishFailed",
    "SubscribePrices",
    "conflate_prices",
    "parse_price_v3",
]

log = logging.getLogger("xorj.price_feed")

PRICES_CHANNEL: Final = "xorj:prices"
DEPENDENCY: Final = "price_api"
MAX_IDS: Final = 50  # Jupiter's limit of ids per request
# token_prices.usd_price is numeric(30, 12) CHECK (> 0): what it cannot hold is not stored.
_MIN_STORABLE: Final = 1e-12
_MAX_STORABLE: Final = 1e17

PRICE_USD = Gauge("xorj_price_usd", "Last accepted USD price per mint", ["mint"])
PRICE_AGE = Gauge("xorj_price_age_seconds", "Age of the last accepted price per mint", ["mint"])
POLLS = Counter(
    "xorj_price_polls_total",
    "Price API polls by outcome: ok, rejected (answered, nothing accepted), timeout, "
    "transport_error, http_error, invalid_response, breaker_open (skipped)",
    ["outcome"],
)
REJECTED = Counter(
    "xorj_price_rejected_total",
    "Prices refused at the edge: not_json, bad_shape, not_finite, not_positive, jump",
    ["reason"],
)
BREAKER = Gauge("xorj_price_breaker_state", "Price API circuit breaker: 0 closed, 1 half-open, 2 open")
STORE_FAILURES = Counter("xorj_price_store_failures_total", "Polls whose prices could not be stored")
PUBLISH_FAILURES = Counter("xorj_price_publish_failures_total", "Polls whose prices could not go to Redis")
NOTIFICATIONS_SKIPPED = Counter(
    "xorj_price_notifications_skipped_total",
    "PricesUpdated not told to a subscriber because its mailbox was full")


# ---------------------------------------------------------------------------------------- the book


@attrs.frozen
class Price:
    mint: str
    usd: float
    observed_at: float  # the book's clock (time.monotonic) when fetched
    wall_time: float  # time.time() when fetched


class PriceBook:
    """The last good price per mint, as every executor reads it: synchronously, no messages.

    trio runs one task at a time, and the feed is the only writer, so a reader never sees half an
    update. The node creates it once; it outlives restarts of the feed. ``clock`` is the clock of
    ``Price.observed_at`` (monotonic seconds), a parameter so tests can age prices without sleeping.
    """

    def __init__(self, stale_after_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        if not stale_after_s > 0:
            raise ValueError(f"stale_after_s must be > 0, got {stale_after_s}")
        self.stale_after_s = stale_after_s
        self.clock = clock
        self._prices: dict[str, Price] = {}

    def get(self, mint: str) -> Price | None:
        """The last good price, however old."""
        return self._prices.get(mint)

    def age_s(self, mint: str) -> float | None:
        price = self._prices.get(mint)
        return None if price is None else max(0.0, self.clock() - price.observed_at)

    def fresh(self, mint: str) -> Price | None:
        """The last good price if it is at most ``stale_after_s`` old; None if unknown or stale."""
        price = self._prices.get(mint)
        if price is None or self.clock() - price.observed_at > self.stale_after_s:
            return None
        return price

    def is_stale(self, mint: str) -> bool:
        """True when there is no fresh price (unknown counts as stale: nothing to trade on)."""
        return self.fresh(mint) is None

    def snapshot(self) -> dict[str, Price]:
        return dict(self._prices)

    def update(self, price: Price) -> None:
        self._prices[price.mint] = price


# ---------------------------------------------------------------------------------------- messages


@attrs.frozen
class PricesUpdated:
    """Prices accepted by one poll (``mint -> usd``) at wall time ``at``. A wake-up more than a
    payload: mailboxes conflate it, so a subscriber reads the `PriceBook` for every mint."""

    prices: Mapping[str, float] = attrs.field(hash=False)
    at: float


@attrs.frozen
class SubscribePrices:
    """Told to the feed: tell ``subscriber`` `PricesUpdated` after every poll."""

    subscriber: ActorRef


def conflate_prices(msg: Any) -> Hashable | None:
    """The ``conflate`` of a subscriber's ChildSpec: the newest `PricesUpdated` replaces older
    ones still queued; anything else is queued as a command."""
    return "xorj:prices-updated" if isinstance(msg, PricesUpdated) else None


class PriceSubscribers(Subscribers[PricesUpdated]):
    """Who hears `PricesUpdated`; created once by the node, shared by every feed incarnation."""

    def __init__(self) -> None:
        super().__init__(NOTIFICATIONS_SKIPPED)


# ---------------------------------------------------------------------------------------- settings


@attrs.frozen
class PriceFeedSettings:
    url: str = attrs.field(repr=redact_url)  # the API's base URL; may carry a key
    mints: tuple[str, ...]
    poll_s: float
    stale_s: float  # must equal the book's stale_after_s (the node builds both from one setting)
    max_jump_pct: float
    timeout_s: float = 3.0  # one HTTP request's deadline
    breaker: BreakerPolicy = attrs.field(
        factory=lambda: BreakerPolicy(consecutive_failures=3, recovery_s=10.0))
    backoff_max_s: float = 30.0
    db_timeout_s: float = 2.0
    publish_timeout_s: float = 1.0

    def __attrs_post_init__(self) -> None:
        if not self.mints:
            raise ValueError("the price feed needs at least one mint")
        if min(self.poll_s, self.stale_s, self.max_jump_pct, self.timeout_s, self.db_timeout_s,
               self.publish_timeout_s) <= 0:
            raise ValueError("poll_s, stale_s, max_jump_pct and the timeouts must be > 0")
        if self.backoff_max_s < self.poll_s:
            raise ValueError("backoff_max_s must be >= poll_s")


# ---------------------------------------------------------------------------------------- parsing


@attrs.frozen
class Rejection:
    mint: str
    reason: str  # the `reason` label of xorj_price_rejected_total
    value: Any


def parse_price_v3(
    payload: Any, requested: Sequence[str], last: Callable[[str], Price | None], max_jump_pct: float
) -> tuple[dict[str, float], list[Rejection]]:
    """Accepted prices and rejections from one decoded Price API v3 answer (a JSON object).

    Only requested mints are read; an absent mint is neither (the API has no price for it).
    """
    accepted: dict[str, float] = {}
    rejected: list[Rejection] = []
    for mint in requested:
        if mint not in payload:
            continue
        entry = payload[mint]
        value = entry.get("usdPrice") if isinstance(entry, dict) else entry
        if not isinstance(entry, dict) or isinstance(value, bool) or not isinstance(value, int | float):
            rejected.append(Rejection(mint, "bad_shape", value))
            continue
        usd = float(value)
        if not math.isfinite(usd):
            rejected.append(Rejection(mint, "not_finite", value))
            continue
        if usd <= 0:
            rejected.append(Rejection(mint, "not_positive", value))
            continue
        before = last(mint)
        if before is not None and abs(usd / before.usd - 1.0) * 100.0 > max_jump_pct:
            rejected.append(Rejection(mint, "jump", value))
            continue
        accepted[mint] = usd
    return accepted, rejected


class _PollFailed(Exception):
    """The API gave no usable answer to a request; counts against the breaker."""

    def __init__(self, outcome: str, reason: str, rejects_as: str | None = None) -> None:
        super().__init__(reason)
        self.outcome = outcome
        self.reason = reason
        self.rejects_as = rejects_as  # an answer that came but was garbage rejects its mints


_STORE: Final = """
INSERT INTO token_prices (mint, at, usd_price)
SELECT * FROM unnest($1::varchar[], $2::timestamptz[], $3::numeric[])
ON CONFLICT DO NOTHING
"""


# ---------------------------------------------------------------------------------------- actor


class PriceFeed(Actor):
    """See the module docstring. Messages: `SubscribePrices`."""

    def __init__(
        self,
        settings: PriceFeedSettings,
        book: PriceBook,
        subscribers: PriceSubscribers,
        *,
        db: Database | None,
        alert: AlertSink,
        publish: Publish | None = None,
    ) -> None:
        if settings.stale_s != book.stale_after_s:
            raise ValueError(f"stale_s ({settings.stale_s}) differs from the book's ({book.stale_after_s})")
        self._settings = settings
        self._book = book
        self._subscribers = subscribers
        self._db = db
        self._alert = alert
        self._publish = publish
        self._down = False  # an outage was announced (dependency_down) and has not ended
        self._stale: dict[str, bool] = {}
        self._started_at = book.clock()
        self.breaker = CircuitBreaker(DEPENDENCY, settings.breaker, on_change=self._breaker_moved)
        BREAKER.set(BreakerState.CLOSED.gauge_value)

    # ------------------------------------------------------------------ actor

    async def run(self, ctx: ChildContext) -> None:
        s = self._settings
        # The safety net behind the trio deadlines: no socket wait outlives this.
        timeout = httpx.Timeout(s.timeout_s + 1.0, connect=min(s.timeout_s, 1.0) + 1.0)
        async with httpx.AsyncClient(timeout=timeout, follow_redirects=False) as http:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._poll_forever, http)
                ctx.started()
                while (msg := await ctx.receive()) is not None:
                    await self.handle(ctx, msg)
                nursery.cancel_scope.cancel()

    async def handle(self, ctx: ChildContext, msg: Any) -> None:
        if isinstance(msg, SubscribePrices):
            self._subscribers.add(msg.subscriber)
        else:
            await super().handle(ctx, msg)

    async def _poll_forever(self, http: httpx.AsyncClient) -> None:
        s = self._settings
        failures = 0
        next_poll = trio.current_time()
        while True:
            if trio.current_time() >= next_poll:
                ok = await self.poll(http)
                if ok is None:  # breaker open: skipped
                    next_poll = trio.current_time() + s.poll_s
                elif ok:
                    failures = 0
                    next_poll = trio.current_time() + s.poll_s
                else:
                    next_poll = trio.current_time() + backoff_delay(
                        failures, min_s=s.poll_s, max_s=s.backoff_max_s, jitter=0.25)
                    failures += 1
            self._watch_staleness()
            # Staleness and ages are looked at every poll_s even while polls back off.
            await trio.sleep_until(min(next_poll, trio.current_time() + s.poll_s))

    # ------------------------------------------------------------------ one poll

    async def poll(self, http: httpx.AsyncClient) -> bool | None:
        """One poll of every mint: True if the API answered, False if it failed, None if skipped."""
        s = self._settings
        accepted: dict[str, float] = {}
        answered = failed = skipped = False
        rejected_any = False
        for start in range(0, len(s.mints), MAX_IDS):
            chunk = s.mints[start : start + MAX_IDS]
            try:
                async with self.breaker.guard():
                    payload = await self._fetch(http, chunk)
            except BreakerOpen:
                skipped = True
                continue
            except _PollFailed as exc:
                failed = True
                POLLS.labels(exc.outcome).inc()
                log.warning("price poll failed", extra={
                    "event": "price_poll_failed", "outcome": exc.outcome, "reason": exc.reason,
                    "url": redact_url(s.url)})
                if exc.rejects_as is not None:
                    for mint in chunk:
                        self._reject(Rejection(mint, exc.rejects_as, exc.reason))
                continue
            answered = True
            good, bad = parse_price_v3(payload, chunk, self._book.get, s.max_jump_pct)
            for rejection in bad:
                self._reject(rejection)
            rejected_any = rejected_any or bool(bad)
            accepted.update(good)
            POLLS.labels("ok" if good or not bad else "rejected").inc()
        if skipped and not (answered or failed):
            POLLS.labels("breaker_open").inc()
            return None
        if accepted:
            await self._accept(accepted)
        return answered

    async def _fetch(self, http: httpx.AsyncClient, mints: Sequence[str]) -> dict[str, Any]:
        s = self._settings
        url = s.url.rstrip("/") + "/price/v3"
        try:
            with trio.move_on_after(s.timeout_s) as scope:  # the request's deadline
                response = await http.get(url, params={"ids": ",".join(mints)})
                body = response.content
        except httpx.TimeoutException as exc:
            raise _PollFailed("timeout", f"{type(exc).__name__}: {scrub(str(exc))}") from None
        except httpx.TransportError as exc:
            raise _PollFailed("transport_error", f"{type(exc).__name__}: {scrub(str(exc))}") from None
        if scope.cancelled_caught:
            raise _PollFailed("timeout", f"no answer within {s.timeout_s:g}s")
        if response.status_code != 200:
            text = scrub(body[:200].decode(errors="replace"))
            raise _PollFailed("http_error", f"HTTP {response.status_code}: {text}")
        try:
            payload = json.loads(body)
        except ValueError:
            raise _PollFailed("invalid_response", "the answer is not JSON", "not_json") from None
        if not isinstance(payload, dict):
            raise _PollFailed("invalid_response", f"the answer is a JSON {type(payload).__name__}, "
                              "not an object", "bad_shape")
        return payload

    def _reject(self, rejection: Rejection) -> None:
        REJECTED.labels(rejection.reason).inc()
        last = self._book.get(rejection.mint)
        details = {"value": _shown(rejection.value), "reason": rejection.reason,
                   "last_good_usd": None if last is None else last.usd}
        if rejection.reason == "jump":
            details["max_jump_pct"] = self._settings.max_jump_pct
        log.warning("price rejected", extra={"event": "price_rejected", "mint": rejection.mint, **details})
        self._alert(Alert(Severity.WARNING, "price_rejected", rejection.mint, details))

    async def _accept(self, accepted: Mapping[str, float]) -> None:
        now, wall = self._book.clock(), time.time()
        for mint, usd in accepted.items():
            self._book.update(Price(mint, usd, now, wall))
            PRICE_USD.labels(mint).set(usd)
        self._watch_staleness()
        msg = PricesUpdated(dict(accepted), wall)
        self._subscribers.publish(msg)
        await self._store(accepted, wall)
        await self._fan_out(msg)

    async def _store(self, accepted: Mapping[str, float], wall: float) -> None:
        if self._db is None:
            return
        at = dt.datetime.fromtimestamp(wall, dt.UTC)
        rows = [(mint, Decimal(repr(round(usd, 12))))
                for mint, usd in accepted.items() if _MIN_STORABLE <= usd < _MAX_STORABLE]
        if not rows:
            return
        try:
            await self._db.execute(_STORE, [m for m, _ in rows], [at] * len(rows), [p for _, p in rows],
                                   timeout=self._settings.db_timeout_s)
        except DatabaseError as exc:
            STORE_FAILURES.inc()
            log.warning("prices not stored", extra={
                "event": "price_store_failed", "error": f"{type(exc).__name__}: {exc}", "mints": len(rows)})

    async def _fan_out(self, msg: PricesUpdated) -> None:
        if self._publish is None:
            return
        payload = json.dumps({"prices": dict(msg.prices), "at": msg.at}, separators=(",", ":")).encode()
        error: str | None = None
        try:
            with trio.move_on_after(self._settings.publish_timeout_s) as scope:
                await self._publish(PRICES_CHANNEL, payload)
            if scope.cancelled_caught:
                error = f"no answer within {self._settings.publish_timeout_s:g}s"
        except (OSError, PublishFailed) as exc:
            error = f"{type(exc).__name__}: {exc}"
        if error is not None:
            PUBLISH_FAILURES.inc()
            log.warning("prices not published", extra={"event": "price_publish_failed", "error": error})

    # ------------------------------------------------------------------ watching

    def _watch_staleness(self) -> None:
        book, now = self._book, self._book.clock()
        for mint in self._settings.mints:
            age = book.age_s(mint)
            if age is None:
                stale = now - self._started_at > book.stale_after_s
            else:
                PRICE_AGE.labels(mint).set(age)
                stale = book.is_stale(mint)
            was = self._stale.get(mint, False)
            self._stale[mint] = stale
            if stale and not was:
                last = book.get(mint)
                details = {"age_s": None if age is None else round(age, 3),
                           "stale_after_s": book.stale_after_s,
                           "last_good_usd": None if last is None else last.usd}
                log.warning("price stale", extra={"event": "price_stale", "mint": mint, **details})
                self._alert(Alert(Severity.WARNING, "price_stale", mint, details))
            elif was and not stale:
                last = book.get(mint)
                details = {"usd": None if last is None else last.usd}
                log.info("price fresh again", extra={"event": "price_fresh", "mint": mint, **details})
                self._alert(Alert(Severity.INFO, "price_fresh", mint, details))

    def _breaker_moved(self, name: str, old: BreakerState, new: BreakerState) -> None:
        BREAKER.set(new.gauge_value)
        level = logging.WARNING if new is BreakerState.OPEN else logging.INFO
        log.log(level, f"price breaker {old.value} -> {new.value}",
                extra={"event": "breaker", "breaker": name, "from": old.value, "to": new.value})
        if new is BreakerState.OPEN and not self._down:
            self._down = True
            self._alert(Alert(Severity.WARNING, "dependency_down", DEPENDENCY, {
                "url": redact_url(self._settings.url), "recovery_s": self._settings.breaker.recovery_s}))
        elif new is BreakerState.CLOSED and self._down:
            self._down = False
            self._alert(Alert(Severity.INFO, "dependency_up", DEPENDENCY,
                              {"url": redact_url(self._settings.url)}))


def _shown(value: Any) -> Any:
    """A rejected value as an alert can carry it (JSON-safe, bounded)."""
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    return str(value)[:200]
