"""The trading circuit breakers: when trades keep failing, stop making new ones for a while.

Owns: `TradingBreakers`, the named breakers every executor consults before an intent and feeds
after every terminal outcome, built from `BreakerSettings` (the ``breaker_*`` settings of the
config) into a `supervisors.breaker.BreakerPolicy`:

- ``trade_failure_rate`` -- CONFIRMED is a success; FAILED with an on-chain reason is a failure.
  ``program_error`` and ``transaction_error`` count for the global breaker AND the user's own;
  ``insufficient_funds``, ``unauthorized`` and ``vault_inactive`` are about one vault and count
  only for that user's breaker (one empty vault must not stop everyone). One per user
  (``trade_failure_rate:user:<user id>``) pauses that user first.
- ``slippage_failure_rate`` -- ``slippage_exceeded`` vs CONFIRMED.
- ``rpc_connectivity`` -- ``rpc_unavailable`` (nothing could be signed or sent) vs any attempt that
  reached the chain.
- ``confirmation_timeout`` -- an attempt that did not settle within the confirm timeout
  (``expired``, or the executor's own "not settled in time") vs one that settled in time.
- Never counted: ``rejected_by_risk`` and ``never_sent`` (our own refusals, not the market's).

A breaker blocks only while OPEN; HALF_OPEN lets trades through as trials, and the first trial's
outcome closes it (success) or reopens it (failure). Outcomes are recorded when the trade ends,
so trials are not rationed here (`CircuitBreaker.before_call` is not used).

Every change of state is logged, shown in the gauge ``xorj_breaker_state{name}`` (0 closed,
1 half-open, 2 open; the per-user breakers share the label ``trade_failure_rate:user`` with the
worst state among users -- never a user id in a label: cardinality) and, for opened / closed,
raised as an alert (WARNING ``breaker_opened`` / INFO ``breaker_closed``; subject the breaker's
full name).

Failure it contains: a run of failed trades (a broken program, a dead RPC, a market moving too
fast) turns into a pause with one alert, instead of a stream of failed transactions and fees.

Synchronous; one object per node shared by every executor in the one trio thread. The clock is a
parameter so tests move time without sleeping.

May import: the standard library, attrs, prometheus_client, `supervisors`, `actors.alerts`,
`actors.trade_lifecycle`.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable
from typing import Final

import attrs
from prometheus_client import Gauge

from actors.alerts import Alert, AlertSink, Severity, null_sink
from actors.trade_lifecycle import FailureReason, TradeStatus
from supervisors.breaker import BreakerPolicy, BreakerState, CircuitBreaker

__all__ = [
    "BREAKER_STATE",
    "USER_LABEL",
    "BreakerKind",
    "BreakerSettings",
    "TradingBreakers",
    "outcome_records",
]

log = logging.getLogger("xorj.trading_breakers")

BREAKER_STATE: Final = Gauge(
    "xorj_breaker_state",
    "Trading circuit breakers: 0 closed, 1 half-open, 2 open (trade_failure_rate:user: the worst user)",
    ["name"],
)


class BreakerKind(enum.StrEnum):
    TRADE_FAILURE_RATE = "trade_failure_rate"
    SLIPPAGE_FAILURE_RATE = "slippage_failure_rate"
    RPC_CONNECTIVITY = "rpc_connectivity"
    CONFIRMATION_TIMEOUT = "confirmation_timeout"


USER_LABEL: Final = f"{BreakerKind.TRADE_FAILURE_RATE}:user"  # the metric label of every per-user breaker
_USER_PREFIX: Final = f"{USER_LABEL}:"
_KINDS: Final = frozenset(str(kind) for kind in BreakerKind)

# FAILED reasons that are about the chain or a program, for every user alike.
_CHAIN_FAILURES: Final = frozenset({FailureReason.PROGRAM_ERROR, FailureReason.TRANSACTION_ERROR})
# FAILED reasons that are about one user's vault: that user's breaker only.
_VAULT_FAILURES: Final = frozenset(
    {FailureReason.INSUFFICIENT_FUNDS, FailureReason.UNAUTHORIZED, FailureReason.VAULT_INACTIVE})


@attrs.frozen
class BreakerSettings:
    """The config's ``breaker_*`` settings (one policy for every trading breaker)."""

    consecutive_failures: int = 3
    failure_rate_pct: float = 80.0
    min_calls: int = 5
    window_s: float = 600.0
    recovery_s: float = 1800.0

    def policy(self) -> BreakerPolicy:
        """The `BreakerPolicy`; `ValueError` for out-of-range settings."""
        return BreakerPolicy(consecutive_failures=self.consecutive_failures,
                             failure_rate=self.failure_rate_pct / 100.0, min_calls=self.min_calls,
                             window_s=self.window_s, recovery_s=self.recovery_s, half_open_calls=1)


def outcome_records(
    status: TradeStatus, reason: FailureReason | None = None, *, settled_in_time: bool = True
) -> tuple[tuple[BreakerKind, bool], ...]:
    """What one terminal trade outcome tells each global breaker: ``(kind, ok)`` pairs.

    (The per-user ``trade_failure_rate`` is fed by `TradingBreakers.record_outcome`, which also
    counts the vault-specific reasons for the user alone.)"""
    if status is TradeStatus.CONFIRMED:
        return ((BreakerKind.TRADE_FAILURE_RATE, True), (BreakerKind.SLIPPAGE_FAILURE_RATE, True),
                (BreakerKind.RPC_CONNECTIVITY, True), (BreakerKind.CONFIRMATION_TIMEOUT, settled_in_time))
    if status is not TradeStatus.FAILED:
        raise ValueError(f"not a terminal status: {status}")
    if reason is None:
        raise ValueError("a FAILED outcome needs its failure reason")
    if reason is FailureReason.RPC_UNAVAILABLE:
        return ((BreakerKind.RPC_CONNECTIVITY, False),)
    if reason is FailureReason.EXPIRED:
        return ((BreakerKind.RPC_CONNECTIVITY, True), (BreakerKind.CONFIRMATION_TIMEOUT, False))
    if reason in (FailureReason.REJECTED_BY_RISK, FailureReason.NEVER_SENT):
        return ()
    landed = ((BreakerKind.RPC_CONNECTIVITY, True), (BreakerKind.CONFIRMATION_TIMEOUT, settled_in_time))
    if reason is FailureReason.SLIPPAGE_EXCEEDED:
        return ((BreakerKind.SLIPPAGE_FAILURE_RATE, False), *landed)
    if reason in _CHAIN_FAILURES:
        return ((BreakerKind.TRADE_FAILURE_RATE, False), *landed)
    return landed  # the vault-specific reasons: the user's breaker only


class TradingBreakers:
    """The node's trading breakers. ``record`` after outcomes, ``open_breakers`` before intents."""

    def __init__(
        self,
        settings: BreakerSettings | None = None,
        *,
        alerts: AlertSink = null_sink,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings or BreakerSettings()
        self._policy = self.settings.policy()
        self._alerts = alerts
        self._clock = clock
        self._global = {kind: self._breaker(str(kind)) for kind in BreakerKind}
        self._users: dict[str, CircuitBreaker] = {}
        self._user_states: dict[str, BreakerState] = {}  # as of each per-user breaker's last change
        for kind in BreakerKind:
            BREAKER_STATE.labels(str(kind)).set(BreakerState.CLOSED.gauge_value)
        BREAKER_STATE.labels(USER_LABEL).set(BreakerState.CLOSED.gauge_value)

    # -- feeding ------------------------------------------------------------------------------

    def record(self, user_id: str | None, kind: BreakerKind | str, ok: bool) -> None:
        """One outcome for breaker ``kind``. ``trade_failure_rate`` also feeds ``user_id``'s own."""
        kind = BreakerKind(kind)
        _note(self._global[kind], ok)
        if kind is BreakerKind.TRADE_FAILURE_RATE and user_id is not None:
            _note(self._user(user_id), ok)

    def record_outcome(
        self, user_id: str, status: TradeStatus, reason: FailureReason | None = None, *,
        settled_in_time: bool = True,
    ) -> None:
        """Feed every breaker one terminal trade outcome (see the module docstring for the mapping)."""
        for kind, ok in outcome_records(status, reason, settled_in_time=settled_in_time):
            self.record(user_id, kind, ok)
        if status is TradeStatus.FAILED and reason in _VAULT_FAILURES:
            _note(self._user(user_id), False)

    # -- reading ------------------------------------------------------------------------------

    def open_breakers(self, user_id: str | None = None) -> tuple[str, ...]:
        """Names of the OPEN breakers that stop new intents for ``user_id`` (global ones included);
        empty when it may trade. Half-open ones let trades through as trials."""
        names = [str(kind) for kind, b in self._global.items() if b.state is BreakerState.OPEN]
        user = self._users.get(user_id) if user_id is not None else None
        if user is not None and user.state is BreakerState.OPEN:
            names.append(user.name)
        return tuple(names)

    def states(self) -> dict[str, BreakerState]:
        """Every breaker's state now: the global ones, then each user's that exists."""
        states = {str(kind): b.state for kind, b in self._global.items()}
        states.update({b.name: b.state for _, b in sorted(self._users.items())})
        return states

    def reset(self, name: str) -> BreakerState:
        """Close breaker ``name`` now and forget its outcomes; its previous state. `KeyError` for an
        unknown name."""
        if name.startswith(_USER_PREFIX) and name[len(_USER_PREFIX):] in self._users:
            user_id = name[len(_USER_PREFIX):]
            old = self._users[user_id].state
            self._users[user_id] = self._breaker(name)
        elif name in _KINDS:
            kind = BreakerKind(name)
            old = self._global[kind].state
            self._global[kind] = self._breaker(name)
        else:
            raise KeyError(name)
        log.warning("breaker reset", extra={"breaker": name, "was": old.value})
        self._changed(name, old, BreakerState.CLOSED)
        return old

    # -- internals ----------------------------------------------------------------------------

    def _user(self, user_id: str) -> CircuitBreaker:
        breaker = self._users.get(user_id)
        if breaker is None:
            breaker = self._users[user_id] = self._breaker(f"{_USER_PREFIX}{user_id}")
        return breaker

    def _breaker(self, name: str) -> CircuitBreaker:
        return CircuitBreaker(name, self._policy, clock=self._clock, on_change=self._changed)

    def _changed(self, name: str, old: BreakerState, new: BreakerState) -> None:
        if old is new:
            return
        per_user = name.startswith(_USER_PREFIX)
        if per_user:
            self._user_states[name] = new
            BREAKER_STATE.labels(USER_LABEL).set(max(s.gauge_value for s in self._user_states.values()))
        else:
            BREAKER_STATE.labels(name).set(new.gauge_value)
        log.warning("breaker %s -> %s", name, new.value, extra={"breaker": name, "from": old.value})
        details: dict[str, object] = {"from": old.value, "to": new.value}
        if per_user:
            details["user_id"] = name[len(_USER_PREFIX):]
        if new is BreakerState.OPEN:
            details["recovery_s"] = self._policy.recovery_s
            self._alerts(Alert(Severity.WARNING, "breaker_opened", name, details))
        elif new is BreakerState.CLOSED:
            self._alerts(Alert(Severity.INFO, "breaker_closed", name, details))


def _note(breaker: CircuitBreaker, ok: bool) -> None:
    state = breaker.state  # an open breaker past its recovery reads (and moves to) half-open here
    if state is BreakerState.OPEN:
        return  # nothing was attempted while it was open: an outcome now is an old trade's, ignore
    if ok:
        breaker.record_success()
    else:
        breaker.record_failure()
