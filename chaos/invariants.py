"""What must hold after any fault: checks against the database AND the chain (DESIGN section 10).

Owns: the evidence a check reads (``Evidence``: trade rows, their ``trade_events``, alerts, and
the chain's own record of every transaction that touches a watched vault or carries a trade's
signature), how it is gathered (``gather_evidence``: the database directly, not through a fault
proxy, and the chain's RPC directly), and the checks themselves. A check is a pure function of
the evidence that returns a frozen ``InvariantResult`` (name, passed, observed figures, detail),
so a check can be shown to fail on a hand-made violating state as easily as to pass on a good one.

The global invariants: ``no_non_terminal_trades``, ``no_intent_executed_twice_on_chain``,
``db_equals_chain``, ``only_legal_transitions``, ``every_failure_alerted``, ``recovery_within``.
The scenario checks (the seed suite's per-fault evidence) are here too, over the evidence of the
intents a scenario created: ``trades_settled_cleanly``, ``no_duplicate_attempts``,
``intents_executed``, ``slippage_failure_recorded``, ``retried_within_tolerance``.

Failure it contains: none of its own -- a database or RPC that does not answer while evidence is
gathered raises (typed, under deadlines); a check never raises on odd data, it reports it.

May import: the standard library, attrs, trio, solders, `actors` (rpc client, database protocol,
trade lifecycle), `contracts.vault_client`.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any, Final

import attrs
import trio
from solders.pubkey import Pubkey
from solders.rpc.config import RpcSignaturesForAddressConfig
from solders.signature import Signature

from actors.database import Database
from actors.rpc_client import RpcUnavailable, SolanaRpc
from actors.trade_lifecycle import TERMINAL, TRANSITIONS, FailureReason, TradeStatus
from contracts.vault_client import trade_events

__all__ = [
    "NOT_ON_CHAIN",
    "ON_CHAIN_FAILURE",
    "AlertFact",
    "ChainTx",
    "EventFact",
    "Evidence",
    "InvariantResult",
    "TradeFact",
    "db_equals_chain",
    "every_failure_alerted",
    "gather_evidence",
    "global_invariants",
    "intents_executed",
    "no_duplicate_attempts",
    "no_intent_executed_twice_on_chain",
    "no_non_terminal_trades",
    "only_legal_transitions",
    "outage_alerted",
    "read_chain",
    "read_database",
    "recovery_within",
    "retried_within_tolerance",
    "slippage_failure_recorded",
    "trades_settled_cleanly",
]

# FAILED for these reasons means the attempt's transaction never landed (or never existed).
NOT_ON_CHAIN: Final = frozenset({FailureReason.EXPIRED, FailureReason.NEVER_SENT,
                                 FailureReason.RPC_UNAVAILABLE, FailureReason.REJECTED_BY_RISK})
# FAILED for these reasons means it landed and the chain recorded the failure.
ON_CHAIN_FAILURE: Final = frozenset({
    FailureReason.SLIPPAGE_EXCEEDED, FailureReason.INSUFFICIENT_FUNDS, FailureReason.UNAUTHORIZED,
    FailureReason.VAULT_INACTIVE, FailureReason.PROGRAM_ERROR, FailureReason.TRANSACTION_ERROR})
TRADE_FAILED_ALERT: Final = "trade_failed"
RESEND_REASON: Final = "resent"  # actors.trade_store.record_resend: an audit row, not a transition
_SHOWN: Final = 10  # ids listed in a figure, at most


@attrs.frozen
class InvariantResult:
    name: str
    passed: bool
    figures: Mapping[str, Any] = attrs.field(factory=dict)
    detail: str = ""

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "passed": self.passed, "figures": dict(self.figures),
                "detail": self.detail}


@attrs.frozen
class TradeFact:
    """One attempt as the database holds it (the columns the checks read)."""

    id: str
    user_id: str
    intent_id: str
    attempt: int
    status: TradeStatus
    failure_reason: str | None = None
    transaction_signature: str | None = None
    amount_in: int | None = None
    minimum_amount_out: int | None = None
    amount_out: int | None = None
    slippage_pct: float | None = None


@attrs.frozen
class EventFact:
    id: int
    trade_id: str
    from_status: TradeStatus | None
    to_status: TradeStatus
    reason: str | None = None


@attrs.frozen
class AlertFact:
    kind: str
    subject: str
    severity: str = "WARNING"
    details: Mapping[str, Any] = attrs.field(factory=dict)
    id: int = 0


@attrs.frozen
class ChainTx:
    """The chain's record of one transaction: did it succeed, and what its TradeExecuted events say.

    ``executed`` holds ``(amount_in, amount_out)`` of each TradeExecuted event in its logs (a
    successful vault ``bot_trade`` has exactly one).
    """

    signature: str
    slot: int
    succeeded: bool
    executed: tuple[tuple[int, int], ...] = ()

    @property
    def is_bot_trade(self) -> bool:
        return self.succeeded and bool(self.executed)


@attrs.frozen
class Evidence:
    """Everything the checks read. ``chain`` maps a signature to the chain's record; a trade
    signature missing from it was looked up and is not on chain."""

    trades: tuple[TradeFact, ...] = ()
    events: tuple[EventFact, ...] = ()
    alerts: tuple[AlertFact, ...] = ()
    chain: Mapping[str, ChainTx] = attrs.field(factory=dict)

    def for_intents(self, intents: Collection[str]) -> Evidence:
        """The part of the evidence about these intents' attempts (the chain record is kept whole)."""
        trades = tuple(t for t in self.trades if t.intent_id in intents)
        ids = {t.id for t in trades}
        return Evidence(trades, tuple(e for e in self.events if e.trade_id in ids), self.alerts, self.chain)

    def attempts(self) -> dict[str, list[TradeFact]]:
        by_intent: dict[str, list[TradeFact]] = defaultdict(list)
        for trade in sorted(self.trades, key=lambda t: (t.intent_id, t.attempt)):
            by_intent[trade.intent_id].append(trade)
        return dict(by_intent)


# ------------------------------------------------------------------------------ gathering


def _details(value: object) -> Mapping[str, Any]:
    """An alert's jsonb details (the driver may hand them over as text)."""
    if isinstance(value, str):
        value = json.loads(value)
    return value if isinstance(value, Mapping) else {}


def _int(value: object) -> int | None:
    return None if value is None else int(value)  # type: ignore[call-overload]


async def read_database(db: Database, *, timeout: float = 10.0) -> Evidence:
    """The trades, their events and the alerts, as the database holds them now."""
    trades = await db.fetch(
        "SELECT t.id, t.user_id, t.intent_id, t.attempt, t.status, t.failure_reason,"
        " t.transaction_signature, t.amount_in, t.minimum_amount_out, t.amount_out, t.slippage"
        " FROM trades t ORDER BY t.created_at, t.id", timeout=timeout)
    events = await db.fetch(
        "SELECT id, trade_id, from_status, to_status, reason FROM trade_events ORDER BY id", timeout=timeout)
    alerts = await db.fetch("SELECT id, kind, subject, severity, details FROM alerts ORDER BY id",
                            timeout=timeout)
    return Evidence(
        trades=tuple(TradeFact(
            id=r["id"], user_id=r["user_id"], intent_id=r["intent_id"], attempt=int(r["attempt"]),
            status=TradeStatus(r["status"]), failure_reason=r["failure_reason"],
            transaction_signature=r["transaction_signature"], amount_in=_int(r["amount_in"]),
            minimum_amount_out=_int(r["minimum_amount_out"]), amount_out=_int(r["amount_out"]),
            slippage_pct=None if r["slippage"] is None else float(Decimal(r["slippage"])),
        ) for r in trades),
        events=tuple(EventFact(
            id=int(r["id"]), trade_id=r["trade_id"],
            from_status=None if r["from_status"] is None else TradeStatus(r["from_status"]),
            to_status=TradeStatus(r["to_status"]), reason=r["reason"]) for r in events),
        alerts=tuple(AlertFact(kind=r["kind"], subject=r["subject"], severity=r["severity"],
                               details=_details(r["details"]), id=int(r["id"])) for r in alerts),
    )


async def _chain_tx(rpc: SolanaRpc, signature: str, *, timeout: float) -> ChainTx | None:
    """The chain's record of one signature; None if the chain has never seen it. A transaction
    the node has a status for but not yet at the confirmed level is waited for (briefly)."""
    sig = Signature.from_string(signature)
    answer = (await rpc.get_transaction(sig, timeout=timeout)).value
    if answer is None:
        status = (await rpc.get_signature_statuses([sig], search_transaction_history=True,
                                                   timeout=timeout)).value[0]
        if status is None:
            return None
        with trio.move_on_after(timeout):
            while answer is None:
                await trio.sleep(0.1)
                answer = (await rpc.get_transaction(sig, timeout=timeout)).value
        if answer is None:
            raise RpcUnavailable("getTransaction", f"{signature} has a status but no transaction after "
                                 f"{timeout:g}s")
    if answer.transaction.meta is None:
        return None
    meta = answer.transaction.meta
    executed = tuple((e.amount_in, e.amount_out) for e in trade_events(meta.log_messages or []))
    return ChainTx(signature, int(answer.slot), meta.err is None, executed)


async def read_chain(
    rpc: SolanaRpc, signatures: Iterable[str], vaults: Iterable[Pubkey], *, since_slot: int = 0,
    timeout: float = 10.0,
) -> dict[str, ChainTx]:
    """The chain's record of these signatures and of every transaction touching ``vaults`` from
    ``since_slot`` on (signatures not on chain are absent from the result)."""
    wanted = dict.fromkeys(signatures)
    for vault in vaults:
        listed = await rpc.get_signatures_for_address(
            vault, RpcSignaturesForAddressConfig(limit=1000), timeout=timeout)
        for entry in listed.value:
            if entry.slot >= since_slot:
                wanted[str(entry.signature)] = None
    found: dict[str, ChainTx] = {}
    for signature in wanted:
        tx = await _chain_tx(rpc, signature, timeout=timeout)
        if tx is not None:
            found[signature] = tx
    return found


async def gather_evidence(
    db: Database, rpc: SolanaRpc, vaults: Iterable[Pubkey], *, since_slot: int = 0, timeout: float = 10.0,
) -> Evidence:
    """The database's record, then the chain's record of every trade signature and watched vault."""
    stored = await read_database(db, timeout=timeout)
    signatures = [t.transaction_signature for t in stored.trades if t.transaction_signature]
    chain = await read_chain(rpc, signatures, vaults, since_slot=since_slot, timeout=timeout)
    return attrs.evolve(stored, chain=chain)


# ------------------------------------------------------------------------------ global invariants


def _ids(items: Iterable[str]) -> list[str]:
    return sorted(items)[:_SHOWN]


def no_non_terminal_trades(ev: Evidence) -> InvariantResult:
    """No attempt is left PENDING or SUBMITTED."""
    counts = Counter(t.status.value for t in ev.trades)
    stuck = [t.id for t in ev.trades if t.status not in TERMINAL]
    return InvariantResult(
        "no_non_terminal_trades", not stuck,
        {"trades": len(ev.trades), "by_status": dict(sorted(counts.items())), "non_terminal": len(stuck),
         "non_terminal_ids": _ids(stuck)},
        f"{len(stuck)} trade(s) left non-terminal" if stuck else "every trade is CONFIRMED or FAILED")


def no_intent_executed_twice_on_chain(ev: Evidence) -> InvariantResult:
    """Counted on the chain: per intent, the successful transactions whose signature is one of its
    attempts' is at most one; and every successful bot_trade on a watched vault is a known attempt."""
    intent_of = {t.transaction_signature: t.intent_id for t in ev.trades if t.transaction_signature}
    executions: Counter[str] = Counter()
    unknown: list[str] = []
    for tx in ev.chain.values():
        if not tx.succeeded:
            continue
        intent = intent_of.get(tx.signature)
        if intent is not None:
            executions[intent] += 1
        elif tx.executed:
            unknown.append(tx.signature)
    twice = [intent for intent, n in executions.items() if n > 1]
    passed = not twice and not unknown
    detail = ("no intent executed more than once; no unknown bot_trade" if passed else
              f"{len(twice)} intent(s) executed more than once, "
              f"{len(unknown)} bot_trade(s) unknown to the database")
    return InvariantResult(
        "no_intent_executed_twice_on_chain", passed,
        {"intents_executed": len(executions),
         "max_executions_per_intent": max(executions.values(), default=0),
         "duplicated_intents": _ids(twice), "unknown_bot_trades": _ids(unknown)},
        detail)


def _disagreement(trade: TradeFact, tx: ChainTx | None) -> str | None:
    """Why the trade's stored terminal state disagrees with the chain, or None if they agree."""
    if trade.status is TradeStatus.CONFIRMED:
        if tx is None:
            return "CONFIRMED but not on chain"
        if not tx.succeeded:
            return "CONFIRMED but failed on chain"
        outs = [out for amount_in, out in tx.executed if amount_in == trade.amount_in]
        if outs != [trade.amount_out]:
            return f"CONFIRMED with amount_out {trade.amount_out}, chain's TradeExecuted says {outs}"
        return None
    reason = trade.failure_reason
    if reason in NOT_ON_CHAIN:
        return None if tx is None else f"FAILED({reason}) but on chain (succeeded={tx.succeeded})"
    if reason in ON_CHAIN_FAILURE:
        if tx is None:
            return f"FAILED({reason}) but not on chain"
        return f"FAILED({reason}) but succeeded on chain" if tx.succeeded else None
    return f"FAILED with an unknown reason {reason!r}"


def db_equals_chain(ev: Evidence) -> InvariantResult:
    """CONFIRMED <=> succeeded on chain with the TradeExecuted event's amount_out; FAILED for an
    off-chain reason <=> not on chain; FAILED for a program error <=> failed on chain."""
    agree: Counter[str] = Counter()
    mismatches: list[str] = []
    for trade in ev.trades:
        if trade.status not in TERMINAL:
            continue
        tx = ev.chain.get(trade.transaction_signature) if trade.transaction_signature else None
        problem = _disagreement(trade, tx)
        if problem is None:
            agree[trade.status.value if trade.status is TradeStatus.CONFIRMED else
                  "FAILED_off_chain" if trade.failure_reason in NOT_ON_CHAIN else "FAILED_on_chain"] += 1
        else:
            mismatches.append(f"{trade.id}: {problem}")
    return InvariantResult(
        "db_equals_chain", not mismatches,
        {"checked": sum(agree.values()) + len(mismatches), "agree": dict(sorted(agree.items())),
         "mismatches": len(mismatches), "examples": mismatches[:_SHOWN]},
        "every terminal trade agrees with the chain" if not mismatches else mismatches[0])


def only_legal_transitions(ev: Evidence) -> InvariantResult:
    """Per trade, in order: NULL -> PENDING first, then only pairs of the transition table, each
    starting where the last ended. A same-status 'resent' row (`TradeStore.record_resend`) is an
    audit note, not a change: it is counted but not checked against the current status, since the
    sender writes it from its own view and a concurrent reconcile may have settled the trade."""
    by_trade: dict[str, list[EventFact]] = defaultdict(list)
    for event in sorted(ev.events, key=lambda e: e.id):
        by_trade[event.trade_id].append(event)
    illegal: list[str] = []
    pairs: Counter[str] = Counter()
    for trade_id, events in by_trade.items():
        current: TradeStatus | None = None
        for event in events:
            pair = (event.from_status, event.to_status)
            pairs[f"{event.from_status or 'NULL'}->{event.to_status}"] += 1
            if event.from_status == event.to_status and event.reason == RESEND_REASON and current is not None:
                continue  # an audit note; written from the sender's view, it may trail a settlement
            legal = (pair == (None, TradeStatus.PENDING) and current is None) or (
                event.from_status is not None and event.from_status == current
                and (event.from_status, event.to_status) in TRANSITIONS)
            if not legal:
                illegal.append(f"{trade_id}: {event.from_status or 'NULL'}->{event.to_status}"
                               f" (trade was {current or 'not born'})")
            current = event.to_status
    return InvariantResult(
        "only_legal_transitions", not illegal,
        {"events": len(ev.events), "trades": len(by_trade), "pairs": dict(sorted(pairs.items())),
         "illegal": len(illegal), "examples": illegal[:_SHOWN]},
        "every trade_events row is a legal step" if not illegal else illegal[0])


def every_failure_alerted(ev: Evidence) -> InvariantResult:
    """Each FAILED attempt has a ``trade_failed`` alert whose subject is its id."""
    alerted = {a.subject for a in ev.alerts if a.kind == TRADE_FAILED_ALERT}
    failed = [t.id for t in ev.trades if t.status is TradeStatus.FAILED]
    silent = [trade_id for trade_id in failed if trade_id not in alerted]
    return InvariantResult(
        "every_failure_alerted", not silent,
        {"failed": len(failed), "alerted": len(failed) - len(silent), "unalerted_ids": _ids(silent),
         "alerts_by_kind": dict(sorted(Counter(a.kind for a in ev.alerts).items()))},
        f"{len(silent)} failure(s) without a trade_failed alert" if silent else "every failure alerted")


def outage_alerted(ev: Evidence, *, kind: str = "dependency_down", what: str | None = None,
                   subject: str | None = None, since_id: int = 0,
                   name: str = "outage_alerted") -> InvariantResult:
    """The outage itself was alerted: an alert of ``kind`` raised after ``since_id`` (the alerts
    table's high-water mark when the fault went in) whose ``details.what`` is ``what`` and/or whose
    subject is ``subject``."""
    matching = [a for a in ev.alerts if a.kind == kind and a.id > since_id
                and (what is None or a.details.get("what") == what)
                and (subject is None or a.subject == subject)]
    wanted = f"{kind}" + (f" ({what})" if what else "") + (f" for {subject}" if subject else "")
    return InvariantResult(
        name, bool(matching),
        {"kind": kind, "what": what, "subject": subject, "alerts": len(matching),
         "subjects": _ids({a.subject for a in matching})},
        f"{len(matching)} {wanted} alert(s) raised" if matching else f"no {wanted} alert was raised")


def recovery_within(recovery_s: float | None, bound_s: float, *, what: str = "recovery") -> InvariantResult:
    """The measured time from the fault's removal to a working engine is within ``bound_s``."""
    passed = recovery_s is not None and recovery_s <= bound_s
    shown = "never" if recovery_s is None else f"{recovery_s:.1f}s"
    return InvariantResult("recovery_within", passed, {"recovery_s": recovery_s, "bound_s": bound_s},
                           f"{what}: {shown} (bound {bound_s:g}s)")


def global_invariants(ev: Evidence, recovery_s: float | None = None,
                      bound_s: float | None = None) -> list[InvariantResult]:
    """The invariants every scenario ends with (checks 9-13 of the seed suite)."""
    results = [no_non_terminal_trades(ev), no_intent_executed_twice_on_chain(ev), every_failure_alerted(ev),
               db_equals_chain(ev), only_legal_transitions(ev)]
    if bound_s is not None:
        results.append(recovery_within(recovery_s, bound_s))
    return results


# ------------------------------------------------------------------------------ scenario checks


def trades_settled_cleanly(ev: Evidence, *, name: str = "trades_settled_cleanly",
                           minimum: int = 1) -> InvariantResult:
    """Every attempt is terminal and every FAILED one names its reason (nothing hangs); at least
    ``minimum`` attempts exist (a check over no trades proves nothing)."""
    stuck = [t.id for t in ev.trades if t.status not in TERMINAL]
    unexplained = [t.id for t in ev.trades if t.status is TradeStatus.FAILED and not t.failure_reason]
    reasons = Counter(t.failure_reason for t in ev.trades if t.status is TradeStatus.FAILED)
    passed = not stuck and not unexplained and len(ev.trades) >= minimum
    return InvariantResult(
        name, passed,
        {"attempts": len(ev.trades),
         "failed_by_reason": dict(sorted((str(k), v) for k, v in reasons.items())),
         "confirmed": sum(t.status is TradeStatus.CONFIRMED for t in ev.trades),
         "non_terminal_ids": _ids(stuck), "failed_without_reason": _ids(unexplained)},
        f"{len(ev.trades)} attempt(s), {len(stuck)} non-terminal, {len(unexplained)} without a reason"
        if not passed else f"{len(ev.trades)} attempt(s) all terminal with reasons")


def no_duplicate_attempts(ev: Evidence, *, max_attempts: int, name: str = "no_duplicate_trades",
                          minimum: int = 1) -> InvariantResult:
    """Per intent: at most one CONFIRMED attempt and at most ``max_attempts`` attempts (at most one
    live attempt at a time is the database's own unique index); over at least ``minimum``
    attempts (no trades is no evidence)."""
    by_intent = ev.attempts()
    confirmed_twice = [i for i, ts in by_intent.items()
                       if sum(t.status is TradeStatus.CONFIRMED for t in ts) > 1]
    too_many = [i for i, ts in by_intent.items() if len(ts) > max_attempts]
    passed = not confirmed_twice and not too_many and len(ev.trades) >= minimum
    return InvariantResult(
        name, passed,
        {"intents": len(by_intent), "attempts": len(ev.trades),
         "max_attempts_seen": max((len(ts) for ts in by_intent.values()), default=0),
         "max_attempts_allowed": max_attempts, "confirmed_twice": _ids(confirmed_twice),
         "too_many": _ids(too_many)},
        "no duplicate trades" if passed else
        f"{len(confirmed_twice)} intent(s) confirmed twice, {len(too_many)} with too many attempts, "
        f"{len(ev.trades)} attempt(s) seen")


def intents_executed(ev: Evidence, intents: Sequence[str], *,
                     name: str = "new_trades_execute") -> InvariantResult:
    """Every one of ``intents`` has a CONFIRMED attempt that the chain agrees with."""
    by_intent = ev.attempts()
    done = []
    for intent in intents:
        for trade in by_intent.get(intent, []):
            tx = ev.chain.get(trade.transaction_signature) if trade.transaction_signature else None
            if trade.status is TradeStatus.CONFIRMED and _disagreement(trade, tx) is None:
                done.append(intent)
                break
    missing = [i for i in intents if i not in done]
    passed = bool(intents) and not missing
    return InvariantResult(
        name, passed, {"intents": len(intents), "executed": len(done), "not_executed": _ids(missing)},
        f"{len(done)}/{len(intents)} intent(s) executed on chain")


def slippage_failure_recorded(ev: Evidence, intent: str) -> InvariantResult:
    """The intent's first attempt landed and failed on chain with SlippageExceeded, and the
    database says so (FAILED slippage_exceeded, the same signature)."""
    attempts = ev.attempts().get(intent, [])
    first = attempts[0] if attempts else None
    tx = ev.chain.get(first.transaction_signature) if first and first.transaction_signature else None
    passed = (first is not None and first.status is TradeStatus.FAILED
              and first.failure_reason == FailureReason.SLIPPAGE_EXCEEDED
              and tx is not None and not tx.succeeded)
    return InvariantResult(
        "slippage_failure_recorded", passed,
        {"attempts": len(attempts), "first_status": None if first is None else first.status.value,
         "first_reason": None if first is None else first.failure_reason,
         "on_chain": tx is not None, "failed_on_chain": tx is not None and not tx.succeeded},
        "first attempt FAILED(slippage_exceeded), failed on chain" if passed else
        "the first attempt is not a recorded on-chain slippage failure")


def retried_within_tolerance(ev: Evidence, intent: str, tolerance_pct: float, *,
                             drift_pct: float = 1.0) -> InvariantResult:
    """After a slippage failure a later attempt of the same intent landed, with a fresh minimum
    (different parameters) that keeps the user's tolerance: amount_out >= minimum_amount_out and
    minimum_amount_out >= amount_out * (1 - tolerance - drift) (the chain enforces the first; the
    second says the minimum was not loosened past the user's tolerance to force a fill; ``drift_pct``
    allows for the market maker moving the pool between the quote and the landing). A recorded
    ``slippage`` percent must not exceed the tolerance either."""
    attempts = ev.attempts().get(intent, [])
    landed = next((t for t in attempts[1:] if t.status is TradeStatus.CONFIRMED), None)
    figures: dict[str, Any] = {"attempts": len(attempts), "tolerance_pct": tolerance_pct}
    if landed is None or landed.amount_out is None or landed.minimum_amount_out is None or not attempts:
        return InvariantResult("retried_within_tolerance", False, figures, "no later attempt landed")
    first = attempts[0]
    tx = ev.chain.get(landed.transaction_signature or "")
    floor = landed.amount_out * (1 - (tolerance_pct + drift_pct) / 100)
    figures.update(attempt=landed.attempt, amount_out=landed.amount_out,
                   minimum_amount_out=landed.minimum_amount_out,
                   first_minimum_amount_out=first.minimum_amount_out,
                   realised_vs_minimum_pct=round(100 * (1 - landed.minimum_amount_out / landed.amount_out), 4)
                   if landed.amount_out else None)
    passed = (tx is not None and _disagreement(landed, tx) is None
              and landed.amount_out >= landed.minimum_amount_out >= floor - 1
              and landed.minimum_amount_out != first.minimum_amount_out
              and (landed.slippage_pct is None or landed.slippage_pct <= tolerance_pct))
    return InvariantResult(
        "retried_within_tolerance", passed, figures,
        f"attempt {landed.attempt} landed: {landed.amount_out} out, minimum {landed.minimum_amount_out}"
        if passed else f"attempt {landed.attempt} does not show a retry within {tolerance_pct:g}%")
