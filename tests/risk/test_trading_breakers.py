"""The trading circuit breakers (`actors.trading_breakers`): when they open, how long they stay open,
how they recover, whom they stop, what they alert and what the gauge shows. Time is an injected
clock moved by the test (no sleeping); alerts go to a list sink."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from actors.alerts import Alert, Severity
from actors.trade_lifecycle import FailureReason, TradeStatus
from actors.trading_breakers import BreakerKind, BreakerSettings, TradingBreakers
from supervisors.breaker import BreakerState

SETTINGS = BreakerSettings(consecutive_failures=3, failure_rate_pct=80, min_calls=5, window_s=600,
                           recovery_s=1800)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def gauge(name: str) -> float | None:
    return REGISTRY.get_sample_value("xorj_breaker_state", {"name": name})


def make() -> tuple[TradingBreakers, Clock, list[Alert]]:
    clock, alerts = Clock(), list[Alert]()

    def sink(alert: Alert) -> None:
        alerts.append(alert)

    return TradingBreakers(SETTINGS, alerts=sink, clock=clock), clock, alerts


def test_settings_become_the_breaker_policy() -> None:
    policy = SETTINGS.policy()
    assert (policy.consecutive_failures, policy.failure_rate, policy.min_calls, policy.window_s,
            policy.recovery_s) == (3, 0.8, 5, 600, 1800)
    with pytest.raises(ValueError, match="failure_rate"):
        BreakerSettings(failure_rate_pct=0).policy()


def test_opens_after_consecutive_failures_stays_open_for_recovery_then_half_open_closes_on_success() -> None:
    breakers, clock, alerts = make()
    program_error = (TradeStatus.FAILED, FailureReason.PROGRAM_ERROR)
    breakers.record_outcome("u1", *program_error)
    breakers.record_outcome("u2", *program_error)
    assert breakers.open_breakers("u3") == ()
    breakers.record_outcome("u3", *program_error)

    # Three chain failures in a row, across users: the global breaker stops everyone.
    assert breakers.open_breakers("anyone") == ("trade_failure_rate",)
    assert breakers.states()["trade_failure_rate"] is BreakerState.OPEN
    assert gauge("trade_failure_rate") == 2
    assert [(a.severity, a.kind, a.subject) for a in alerts] == [
        (Severity.WARNING, "breaker_opened", "trade_failure_rate")]
    assert alerts[0].details["recovery_s"] == 1800

    clock.now += 1799
    assert breakers.open_breakers("anyone") == ("trade_failure_rate",)
    clock.now += 1
    # Half-open: trades go through as trials.
    assert breakers.open_breakers("anyone") == ()
    assert breakers.states()["trade_failure_rate"] is BreakerState.HALF_OPEN
    assert gauge("trade_failure_rate") == 1
    assert len(alerts) == 1  # half-open is not an alert

    breakers.record_outcome("u1", TradeStatus.CONFIRMED)
    assert breakers.states()["trade_failure_rate"] is BreakerState.CLOSED
    assert gauge("trade_failure_rate") == 0
    assert [(a.severity, a.kind) for a in alerts] == [
        (Severity.WARNING, "breaker_opened"), (Severity.INFO, "breaker_closed")]


def test_a_failed_trial_reopens_for_another_recovery_period() -> None:
    breakers, clock, alerts = make()
    for _ in range(3):
        breakers.record(None, BreakerKind.RPC_CONNECTIVITY, ok=False)
    clock.now += 1800
    assert breakers.open_breakers() == ()
    breakers.record_outcome("u1", TradeStatus.FAILED, FailureReason.RPC_UNAVAILABLE)
    assert breakers.open_breakers() == ("rpc_connectivity",)
    clock.now += 1799
    assert breakers.open_breakers() == ("rpc_connectivity",)
    assert [a.kind for a in alerts] == ["breaker_opened", "breaker_opened"]


def test_opens_on_the_failure_rate_within_the_window_without_three_in_a_row() -> None:
    breakers, clock, _ = make()
    kind = BreakerKind.SLIPPAGE_FAILURE_RATE
    # An old success falls out of the window and does not dilute the rate.
    breakers.record(None, kind, ok=True)
    clock.now += 601
    for ok in (False, False, True, False):
        breakers.record(None, kind, ok=ok)
        clock.now += 10
    assert breakers.open_breakers() == ()  # 4 calls in the window: below min_calls
    breakers.record(None, kind, ok=False)  # 4 failures of 5, never 3 in a row
    assert breakers.open_breakers() == ("slippage_failure_rate",)


def test_rate_below_the_threshold_keeps_it_closed() -> None:
    breakers, _, alerts = make()
    for ok in (False, False, True, False, True, False, False, True, True, True):
        breakers.record(None, BreakerKind.CONFIRMATION_TIMEOUT, ok=ok)
    assert breakers.open_breakers() == ()
    assert alerts == []


def test_a_users_own_vault_failures_pause_only_that_user() -> None:
    breakers, _, alerts = make()
    for _ in range(3):
        breakers.record_outcome("alice", TradeStatus.FAILED, FailureReason.INSUFFICIENT_FUNDS)
    assert breakers.open_breakers("alice") == ("trade_failure_rate:user:alice",)
    assert breakers.open_breakers("bob") == ()
    assert breakers.states()["trade_failure_rate"] is BreakerState.CLOSED
    assert [(a.kind, a.subject, a.details.get("user_id")) for a in alerts] == [
        ("breaker_opened", "trade_failure_rate:user:alice", "alice")]
    # The metric names the per-user breakers together, never a user id (cardinality).
    assert gauge("trade_failure_rate:user") == 2
    assert gauge("trade_failure_rate:user:alice") is None

    assert breakers.reset("trade_failure_rate:user:alice") is BreakerState.OPEN
    assert breakers.open_breakers("alice") == ()
    assert gauge("trade_failure_rate:user") == 0
    assert alerts[-1].kind == "breaker_closed"


def test_chain_failures_of_one_user_count_for_that_user_and_globally() -> None:
    breakers, _, _ = make()
    for _ in range(3):
        breakers.record_outcome("carol", TradeStatus.FAILED, FailureReason.TRANSACTION_ERROR)
    assert breakers.open_breakers("carol") == ("trade_failure_rate", "trade_failure_rate:user:carol")
    assert breakers.open_breakers("dave") == ("trade_failure_rate",)


@pytest.mark.parametrize(
    ("reason", "opens"),
    [
        (FailureReason.SLIPPAGE_EXCEEDED, ("slippage_failure_rate",)),
        (FailureReason.RPC_UNAVAILABLE, ("rpc_connectivity",)),
        (FailureReason.EXPIRED, ("confirmation_timeout",)),
        (FailureReason.REJECTED_BY_RISK, ()),
        (FailureReason.NEVER_SENT, ()),
    ],
)
def test_each_failure_reason_feeds_its_own_breaker(reason: FailureReason, opens: tuple[str, ...]) -> None:
    breakers, _, _ = make()
    for _ in range(3):
        breakers.record_outcome("erin", TradeStatus.FAILED, reason)
    assert breakers.open_breakers("erin") == opens


def test_confirmed_but_late_counts_against_confirmation_timeout_only() -> None:
    breakers, _, _ = make()
    for _ in range(3):
        breakers.record_outcome("frank", TradeStatus.CONFIRMED, settled_in_time=False)
    assert breakers.open_breakers("frank") == ("confirmation_timeout",)


def test_reset_closes_an_open_breaker_and_refuses_unknown_names() -> None:
    breakers, _, alerts = make()
    for _ in range(3):
        breakers.record(None, "rpc_connectivity", ok=False)
    assert breakers.reset("rpc_connectivity") is BreakerState.OPEN
    assert breakers.open_breakers() == ()
    assert [a.kind for a in alerts] == ["breaker_opened", "breaker_closed"]
    with pytest.raises(KeyError):
        breakers.reset("no_such_breaker")
    with pytest.raises(ValueError, match="terminal"):
        breakers.record_outcome("u", TradeStatus.PENDING)
