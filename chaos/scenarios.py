"""The chaos scenarios: real faults on real connections, each ending with evidence from the
database and the chain (DESIGN section 10, issue 7).

Owns: the fault records (``ToxicFault`` on named proxies, ``ProxyDown``, ``ChainFault`` -- the
local chain's drop/delay knobs), the ``ScenarioContext`` a scenario drives the engine through
(``drill`` a trade with the control socket's ``trade`` command, so a scenario knows the intents it
created; wait on the database directly; inject faults as scopes that always remove them; measure
recovery), the ``Scenario`` record (name, category, critical, description, ``run``) and the two
suites. The seed suite is the thirteen checks of the issue grouped into three real scenarios
(``SEED_CHECKS`` maps each check number to the invariant that evidences it); the runner adds the
global invariants (checks 9-13) after every scenario and at the end. The full suite adds
fail-over, degraded RPC links, price feed down/stale, Redis down, reset_peer on Postgres, dropped
transactions, kill -9 mid-trade, a crash storm and a seeded nemesis.

Failure it contains: a fault outliving its scenario (every fault is an ``async with`` scope whose
exit, shielded, removes it) and a wait that never ends (every wait has a deadline; a deadline that
passes is evidence -- a failed check -- not a hang).

May import: the standard library, trio, attrs, solders, `actors` (rpc, lifecycle), `contracts`
(AMM builders), `engine.control_client` (its error type), `chaos.topology`, `chaos.invariants`,
`chaos.toxiproxy_client`.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any, Final

import attrs
import trio
from solders.keypair import Keypair
from solders.message import Message
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.transaction import Transaction
from solders.transaction_status import TransactionConfirmationStatus

from actors.trade_lifecycle import TERMINAL, FailureReason, TradeStatus
from chaos.invariants import (
    Evidence,
    InvariantResult,
    TradeFact,
    db_equals_chain,
    gather_evidence,
    intents_executed,
    no_duplicate_attempts,
    no_non_terminal_trades,
    outage_alerted,
    read_database,
    recovery_within,
    retried_within_tolerance,
    slippage_failure_recorded,
    trades_settled_cleanly,
)
from chaos.topology import Topology, TopologyError
from chaos.toxiproxy_client import Stream
from contracts.amm_client import AmmClient
from contracts.pda import associated_token_address
from engine.control_client import ControlError

__all__ = [
    "FULL",
    "SEED",
    "SEED_CHECKS",
    "ChainFault",
    "Fault",
    "ProxyDown",
    "Scenario",
    "ScenarioContext",
    "ScenarioOutcome",
    "ToxicFault",
    "suite",
]

TRADE_USD: Final = 2.0
CUT_SETTLE_S: Final = 30.0  # check 1: under an RPC cut, no attempt is left PENDING after this
ALERT_FLUSH_S: Final = 30.0  # an alert raised during a database outage is stored within this
DB_NOTICE_S: Final = 20.0  # check 10: the database cut is held until an executor pauses on it
SETTLE_S: Final = 90.0  # every trade of a scenario is terminal within this, or check 1/5 fails
RECOVERY_BOUND_S: Final = 60.0  # check 12: fault removed -> a new trade CONFIRMED on chain
PROBE_EVERY_S: Final = 4.0
_POLL_S: Final = 0.2


# ------------------------------------------------------------------------------ faults


@attrs.frozen
class ToxicFault:
    """One toxic of ``type`` on each of ``proxies`` (toxiproxy's attributes and stream)."""

    proxies: tuple[str, ...]
    type: str
    attributes: Mapping[str, int] = attrs.field(factory=dict)
    stream: Stream = "downstream"
    toxicity: float = 1.0

    @asynccontextmanager
    async def apply(self, topology: Topology, record: list[dict[str, Any]]) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            for proxy in self.proxies:
                added = await stack.enter_async_context(topology.toxiproxy.toxic(
                    proxy, self.type, stream=self.stream, toxicity=self.toxicity, attributes=self.attributes))
                record.append({"kind": "toxic", "proxy": proxy, "name": added.name, "type": added.type,
                               "stream": added.stream, "toxicity": added.toxicity,
                               "attributes": dict(added.attributes)})
            yield


@attrs.frozen
class ProxyDown:
    """The proxies refuse connections and drop the open ones (the dependency is down)."""

    proxies: tuple[str, ...]

    @asynccontextmanager
    async def apply(self, topology: Topology, record: list[dict[str, Any]]) -> AsyncIterator[None]:
        try:
            for proxy in self.proxies:
                await topology.toxiproxy.disable(proxy)
                record.append({"kind": "proxy_down", "proxy": proxy})
            yield
        finally:
            with trio.CancelScope(shield=True):
                for proxy in self.proxies:
                    await topology.toxiproxy.enable(proxy)


@attrs.frozen
class ChainFault:
    """The local chain drops a share of sent transactions and/or lands them late."""

    drop_rate: float = 0.0
    land_delay_slots: int = 0

    @asynccontextmanager
    async def apply(self, topology: Topology, record: list[dict[str, Any]]) -> AsyncIterator[None]:
        try:
            await topology.set_chain_faults(drop_rate=self.drop_rate, land_delay_slots=self.land_delay_slots)
            record.append({"kind": "chain", "dropRate": self.drop_rate,
                           "landDelaySlots": self.land_delay_slots})
            yield
        finally:
            with trio.CancelScope(shield=True):
                await topology.set_chain_faults()


Fault = ToxicFault | ProxyDown | ChainFault
RPC_BOTH: Final = ("rpc", "rpc_backup")


# ------------------------------------------------------------------------------ context


def _confirmed(rows: list[TradeFact]) -> bool:
    return any(t.status is TradeStatus.CONFIRMED for t in rows)


def renamed(result: InvariantResult, name: str) -> InvariantResult:
    return attrs.evolve(result, name=name)


def combined(name: str, *results: InvariantResult) -> InvariantResult:
    """One check made of several: passes when all do; figures keyed by the parts' names."""
    failed = [r for r in results if not r.passed]
    return InvariantResult(name, not failed, {r.name: dict(r.figures) for r in results},
                           "; ".join(r.detail for r in (failed or results)))


def either(name: str, *results: InvariantResult) -> InvariantResult:
    """One check met by any of several pieces of evidence; figures keyed by the parts' names."""
    passed = [r for r in results if r.passed]
    return InvariantResult(name, bool(passed), {r.name: dict(r.figures) for r in results},
                           "; ".join(r.detail for r in (passed or results)))


class ScenarioContext:
    """What a scenario drives the system through. One per scenario run."""

    def __init__(self, topology: Topology, rng: random.Random) -> None:
        self.topology = topology
        self.rng = rng
        self.faults: list[dict[str, Any]] = []
        self.intents: list[str] = []
        self.refused: list[str] = []
        self.jobs: dict[str, str] = {}  # intent -> the execution job the drill made for it
        self._started = trio.current_time()
        self._next_user = 0

    def elapsed(self) -> float:
        return round(trio.current_time() - self._started, 3)

    # --- driving trades ---

    async def drill(self, *, usd: float = TRADE_USD, user: int | None = None, input: str = "USDC",
                    output: str = "JUP") -> str | None:
        """One trade through the executor's normal path; its intent id, or None if refused."""
        owners = self.topology.demo_owners
        if user is None:
            user, self._next_user = self._next_user % len(owners), self._next_user + 1
        try:
            answer = await self.topology.ctl(
                "trade", {"user": owners[user], "input": input, "output": output, "usd": usd}, timeout=15.0)
        except (ControlError, trio.TooSlowError) as exc:
            self.refused.append(str(exc))
            return None
        intent = str(answer["intent_id"])
        self.intents.append(intent)
        if answer.get("job_id") is not None:
            self.jobs[intent] = str(answer["job_id"])
        return intent

    async def drill_many(self, count: int, **kwargs: Any) -> list[str]:
        intents = [await self.drill(**kwargs) for _ in range(count)]
        return [i for i in intents if i is not None]

    # --- the database, directly ---

    async def rows(self, intents: Collection[str]) -> list[TradeFact]:
        stored = await read_database(self.topology.db, timeout=10.0)
        return [t for t in stored.trades if t.intent_id in intents]

    async def wait_rows(self, intents: Collection[str], done: Callable[[list[TradeFact]], bool], *,
                        within: float) -> bool:
        """Poll the database until ``done(rows of intents)``; False when ``within`` passes first."""
        with trio.move_on_after(within):
            while not done(await self.rows(intents)):  # noqa: ASYNC110 -- another process's state
                await trio.sleep(_POLL_S)
            return True
        return False

    async def _finished_jobs(self, intents: Collection[str]) -> set[str]:
        """The intents whose execution job is over (no further attempt will be made for them)."""
        jobs = {self.jobs[i]: i for i in intents if i in self.jobs}
        if not jobs:
            return set()
        rows = await self.topology.db.fetch(
            "SELECT id FROM execution_jobs"
            " WHERE id = ANY($1::varchar[]) AND status NOT IN ('PENDING', 'RUNNING')",
            list(jobs), timeout=10.0)
        return {jobs[r["id"]] for r in rows}

    async def settled(self, intents: Collection[str]) -> bool:
        """Every attempt of these intents is terminal and each intent is done: its job is over,
        or (when the drill named no job) it has attempts."""
        rows = await self.rows(intents)
        if not all(t.status in TERMINAL for t in rows):
            return False
        with_rows = {t.intent_id for t in rows}
        finished = await self._finished_jobs(intents)
        return all(i in finished if i in self.jobs else i in with_rows for i in intents)

    async def wait_settled(self, intents: Collection[str], *, within: float = SETTLE_S) -> bool:
        """Wait until ``settled(intents)``, seen twice a second apart; False if ``within`` passes."""
        with trio.move_on_after(within):
            while True:
                if await self.settled(intents):
                    await trio.sleep(1.0)
                    if await self.settled(intents):
                        return True
                await trio.sleep(_POLL_S)
        return False

    async def wait_signed(self, intents: Collection[str], *, within: float) -> bool:
        """Every intent has an attempt whose signed bytes are durable (it may be on the wire)."""
        return await self.wait_rows(
            intents, lambda rows: {t.intent_id for t in rows if t.transaction_signature} >= set(intents),
            within=within)

    async def wait_engine(self, condition: Callable[[Mapping[str, Any]], bool], *, within: float) -> bool:
        """Poll the engine's ``status`` until ``condition`` holds; False when ``within`` passes."""
        with trio.move_on_after(within):
            while True:
                status = await self.topology.engine_status()
                if status is not None and condition(status):
                    return True
                await trio.sleep(_POLL_S)
        return False

    async def wait_alert(self, kind: str, *, since_id: int, what: str | None = None,
                         subject: str | None = None, within: float = ALERT_FLUSH_S) -> bool:
        """Poll the alerts table until an alert of ``kind`` (``details.what`` = ``what``, subject =
        ``subject``) newer than ``since_id`` is there. An alert raised while the database was down
        is kept by the alerter and written once it is back, a few seconds later."""
        query = ("SELECT count(*) FROM alerts WHERE id > $1 AND kind = $2"
                 " AND ($3::text IS NULL OR details->>'what' = $3) AND ($4::text IS NULL OR subject = $4)")
        with trio.move_on_after(within):
            while not await self.topology.db.fetchval(  # noqa: ASYNC110 -- another process writes it
                    query, since_id, kind, what, subject, timeout=10.0):
                await trio.sleep(_POLL_S)
            return True
        return False

    async def alert_mark(self) -> int:
        """The alerts table's high-water mark: alerts raised from now on have a larger id."""
        mark = await self.topology.db.fetchval("SELECT COALESCE(max(id), 0) FROM alerts", timeout=10.0)
        return int(mark)

    async def evidence(self) -> Evidence:
        return await gather_evidence(self.topology.db, self.topology.rpc, self.topology.vaults,
                                     since_slot=self.topology.since_slot)

    # --- faults ---

    @asynccontextmanager
    async def fault(self, *faults: Fault) -> AsyncIterator[None]:
        """The faults are in place inside the block; removed (shielded) however it exits."""
        at = self.elapsed()
        record: list[dict[str, Any]] = []
        try:
            async with AsyncExitStack() as stack:
                for fault in faults:
                    await stack.enter_async_context(fault.apply(self.topology, record))
                yield
        finally:
            removed = self.elapsed()
            self.faults.extend({**r, "at_s": at, "removed_at_s": removed} for r in record)

    # --- recovery ---

    async def engine_healthy(self) -> bool:
        status = await self.topology.engine_status()
        if not self.topology.is_ready(status) or status is None:
            return False
        # "connecting" is a dependency not yet used since a restart: the probe trade decides.
        deps = status.get("dependencies") or {}
        return all(isinstance(d, Mapping) and d.get("state") in ("up", "connecting") for d in deps.values())

    async def recover(self, *, within: float = RECOVERY_BOUND_S) -> float | None:
        """Seconds from now until the engine reports no dependency down AND a new trade is
        CONFIRMED on chain; None if that does not happen within ``within``."""
        start = trio.current_time()
        with trio.move_on_after(within):
            while not await self.engine_healthy():  # noqa: ASYNC110 -- another process's state
                await trio.sleep(_POLL_S)
            while True:
                probe = await self.drill()
                if probe is not None and await self.wait_rows(
                        [probe], _confirmed, within=PROBE_EVERY_S * 3):
                    return round(trio.current_time() - start, 3)
                await trio.sleep(PROBE_EVERY_S if probe is None else 0)
        return None

    # --- the market, moved for real ---

    async def move_pool(self, input_symbol: str, output_symbol: str,
                        share_of_reserve: float) -> dict[str, Any]:
        """A wallet of the harness swaps ``share_of_reserve`` of the pool's input reserve into it
        (minted fresh by the local chain's admin method), moving the price against a trade in the
        same direction. Direct to the chain, not through the proxy."""
        move = await self.prepare_pool_move(input_symbol, output_symbol, share_of_reserve)
        return await move()

    async def prepare_pool_move(self, input_symbol: str, output_symbol: str,
                                share_of_reserve: float) -> Callable[[], Awaitable[dict[str, Any]]]:
        """Fund the harness's wallet now; the returned call only signs, sends and confirms the swap,
        so the move fits in the short window between a trade's signing and its landing."""
        topology = self.topology
        amm = AmmClient(Pubkey.from_string(topology.manifest["programs"]["amm"]))
        mint_in, mint_out = topology.mint(input_symbol), topology.mint(output_symbol)
        reserve_account = amm.pool_token_account(mint_in, mint_out, mint_in)
        balance = await topology.rpc.get_token_account_balance(reserve_account, timeout=5.0)
        reserve = int(balance.value.amount)
        amount = max(1, int(reserve * share_of_reserve))
        wallet = Keypair()
        owner = wallet.pubkey()
        await topology.chain_admin("requestAirdrop", [str(owner), 1_000_000_000])
        await topology.chain_admin("localnet_mint", [str(owner), str(mint_in), amount])
        await topology.chain_admin("localnet_mint", [str(owner), str(mint_out), 1])
        ix = amm.swap(owner, mint_in, mint_out, associated_token_address(owner, mint_in),
                      associated_token_address(owner, mint_out), amount, 0)

        async def move() -> dict[str, Any]:
            blockhash = (await topology.rpc.get_latest_blockhash(timeout=5.0)).value.blockhash
            tx = Transaction([wallet], Message([ix], owner), blockhash)
            signature = await topology.rpc.send_transaction(bytes(tx), timeout=5.0)
            await _wait_confirmed(topology, signature)
            return {"kind": "pool_move", "input": input_symbol, "output": output_symbol, "amount_in": amount,
                    "reserve_before": reserve, "signature": str(signature), "at_s": self.elapsed()}

        return move


async def _wait_confirmed(topology: Topology, signature: Signature, within: float = 20.0) -> None:
    settled = (TransactionConfirmationStatus.Confirmed, TransactionConfirmationStatus.Finalized)
    with trio.fail_after(within):
        while True:
            status = (await topology.rpc.get_signature_statuses([signature], timeout=5.0)).value[0]
            if status is not None and (status.confirmation_status in settled or status.confirmations is None):
                if status.err is not None:
                    raise TopologyError(f"the harness's own transaction {signature} failed: {status.err}")
                return
            await trio.sleep(_POLL_S)


# ------------------------------------------------------------------------------ scenario records


@attrs.frozen
class ScenarioOutcome:
    checks: tuple[InvariantResult, ...]
    recovery_s: float | None = None


@attrs.frozen
class Scenario:
    name: str
    category: str
    critical: bool
    description: str
    run: Callable[[ScenarioContext], Awaitable[ScenarioOutcome]]
    touches_rpc: bool = True  # its faults may open the engine's RPC breakers


def _max_attempts(ctx: ScenarioContext) -> int:
    # one first attempt, then the executor's bounded retries (slippage, expiry)
    return 1 + ctx.topology.engine_settings.slippage_retries


# ------------------------------------------------------------------------------ the seed suite


async def rpc_timeout(ctx: ScenarioContext) -> ScenarioOutcome:
    """Checks 1-3. The RPC link is slowed so trades are caught in flight, then cut (every byte
    held: requests time out). While it is cut, every attempt that was not on the wire must end
    FAILED with its reason (nothing hangs; a signed attempt that may be on the wire may honestly
    stay SUBMITTED until the chain can be asked); trades made while it is cut must not multiply;
    the outage is alerted; after it comes back every attempt is terminal and new trades execute."""
    mark = await ctx.alert_mark()
    slow = ToxicFault(RPC_BOTH, "latency", {"latency": 1200, "jitter": 0}, stream="upstream")
    cut = (ToxicFault(RPC_BOTH, "timeout", {"timeout": 0}, stream="upstream"),
           ToxicFault(RPC_BOTH, "timeout", {"timeout": 0}, stream="downstream"))
    async with ctx.fault(slow):
        in_flight = await ctx.drill_many(2)
        await ctx.wait_rows(in_flight, lambda rows: {t.intent_id for t in rows} >= set(in_flight), within=30)
        async with ctx.fault(*cut):
            cut_at = trio.current_time()
            while_failing = await ctx.drill_many(2)
            caught = in_flight + while_failing
            # Under the cut: no attempt left PENDING, and at least one FAILED (the fault bit).
            clean = await ctx.wait_rows(
                caught, lambda rows: bool(rows) and all(t.status is not TradeStatus.PENDING for t in rows)
                and any(t.status is TradeStatus.FAILED for t in rows), within=CUT_SETTLE_S)
            under_cut_s = round(trio.current_time() - cut_at, 3)
            during = await ctx.rows(caught)
            engine_answers = await ctx.topology.engine_status() is not None
    recovery = await ctx.recover()
    after = await ctx.drill_many(2)
    await ctx.wait_settled(ctx.intents)
    # The RPC outage is alerted by whichever part met it first: an executor pausing on the RPC
    # (dependency_down, what=rpc) or the trading breaker on RPC connectivity opening.
    if not await ctx.wait_alert("breaker_opened", subject="rpc_connectivity", since_id=mark, within=5.0):
        await ctx.wait_alert("dependency_down", what="rpc", since_id=mark, within=5.0)
    ev = await ctx.evidence()
    scenario = ev.for_intents(caught)
    settled = trades_settled_cleanly(scenario, minimum=2)
    hung = [r for r in ctx.refused if "TooSlowError" in r or "timed out" in r]
    under_cut = InvariantResult(
        "failed_cleanly_under_cut", clean and engine_answers and not hung,
        {"seconds_under_cut": under_cut_s,
         "statuses_under_cut": dict(sorted(Counter(t.status.value for t in during).items())),
         "failed_under_cut_by_reason": dict(sorted(Counter(
             str(t.failure_reason) for t in during if t.status is TradeStatus.FAILED).items())),
         "engine_answered_under_cut": engine_answers, "drills_timed_out": len(hung)},
        f"under the cut after {under_cut_s:g}s: "
        + ", ".join(f"{k} {v}" for k, v in sorted(Counter(t.status.value for t in during).items())))
    return ScenarioOutcome((
        combined("rpc_timeout_trades_fail_cleanly", under_cut, settled),
        renamed(no_duplicate_attempts(scenario, max_attempts=_max_attempts(ctx)),
                "no_duplicate_trades_while_rpc_fails"),
        renamed(intents_executed(ev, after), "trades_execute_after_rpc_recovery"),
        either("rpc_outage_alerted",
               outage_alerted(ev, what="rpc", since_id=mark, name="executor_paused_on_rpc"),
               outage_alerted(ev, kind="breaker_opened", subject="rpc_connectivity", since_id=mark,
                              name="rpc_connectivity_breaker_opened")),
        recovery_within(recovery, RECOVERY_BOUND_S, what="rpc cut removed -> a trade confirmed"),
    ), recovery)


async def db_loss(ctx: ScenarioContext) -> ScenarioOutcome:
    """Checks 4-6. The database link is cut while trades are signed and on the wire: they land on
    chain while the engine cannot record it; after the database returns every trade ends in the
    state the chain proves, nothing is left PENDING/SUBMITTED, the outage was alerted, and new
    trades execute."""
    mark = await ctx.alert_mark()
    slow_rpc = ToxicFault(RPC_BOTH, "latency", {"latency": 800, "jitter": 0}, stream="upstream")
    async with ctx.fault(slow_rpc):
        in_flight = await ctx.drill_many(2)
        await ctx.wait_signed(in_flight, within=30)
        async with ctx.fault(ProxyDown(("postgres",))):
            cut_rows = await _rows_before_cut(ctx, in_flight)
            held = trio.current_time()
            # Long enough for the engine to notice (an executor pauses on the database) and past
            # the blockhash window: what was sent has landed or expired meanwhile.
            noticed = await ctx.wait_engine(lambda st: _paused_on(st, "database"), within=DB_NOTICE_S)
            await trio.sleep(max(0.0, 6.0 - (trio.current_time() - held)))
            during = await ctx.drill_many(1)
    recovery = await ctx.recover()
    await ctx.wait_settled(in_flight + during)
    after = await ctx.drill_many(2)
    await ctx.wait_settled(ctx.intents)
    await ctx.wait_alert("dependency_down", what="database", since_id=mark)
    ev = await ctx.evidence()
    scenario = ev.for_intents(in_flight + during)
    mid_trade = InvariantResult(
        "cut_mid_trade", any(t.status is not TradeStatus.CONFIRMED and t.status is not TradeStatus.FAILED
                             for t in cut_rows),
        {"statuses_when_cut": dict(sorted(Counter(t.status.value for t in cut_rows).items())),
         "engine_paused_on_database": noticed},
        "the database was cut while at least one attempt was signed and not yet settled")
    return ScenarioOutcome((
        combined("db_loss_trades_match_chain", mid_trade, trades_settled_cleanly(scenario, minimum=2),
                 db_equals_chain(scenario)),
        renamed(no_non_terminal_trades(ev), "no_limbo_after_db_recovery"),
        renamed(intents_executed(ev, after), "trades_execute_after_db_recovery"),
        outage_alerted(ev, what="database", since_id=mark, name="db_outage_alerted"),
        recovery_within(recovery, RECOVERY_BOUND_S, what="database back -> a trade confirmed"),
    ), recovery)


def _paused_on(status: Mapping[str, Any], what: str) -> bool:
    """Some executor reports itself paused on ``what`` (``database`` / ``rpc``)."""
    trading = status.get("trading")
    executors = trading.get("executors") if isinstance(trading, Mapping) else None
    if not isinstance(executors, Mapping):
        return False
    return any(isinstance(v, Mapping) and v.get("state") == "paused"
               and str(v.get("detail") or "").startswith(what) for v in executors.values())


async def _rows_before_cut(ctx: ScenarioContext, intents: Collection[str]) -> list[TradeFact]:
    """The attempts as the database held them when it was cut (read by the harness's own
    connection, which does not go through the proxy)."""
    return await ctx.rows(intents)


async def slippage(ctx: ScenarioContext) -> ScenarioOutcome:
    """Checks 7-8. The RPC link is slowed so the signed attempt reaches the chain late; meanwhile
    the harness moves the pool for real (a large swap the same way), so the vault fails the trade
    with SlippageExceeded. The executor records it and retries with a fresh quote, which lands
    within the user's tolerance."""
    slow = ToxicFault(RPC_BOTH, "latency", {"latency": 800, "jitter": 0}, stream="upstream")
    intent: str | None = None
    moved_at: float | None = None
    move = await ctx.prepare_pool_move("USDC", "JUP", 0.08)
    async with ctx.fault(slow):
        intent = await ctx.drill(usd=5.0, user=0)
        if intent is not None and await ctx.wait_signed([intent], within=30):
            ctx.faults.append(await move())
            moved_at = trio.current_time()
    if intent is None:
        failed = InvariantResult("slippage_failure_recorded", False, {"refused": ctx.refused[-1:]},
                                 "the engine refused the drill trade")
        return ScenarioOutcome((failed, attrs.evolve(failed, name="retried_within_tolerance")))
    # Recovery here: from the pool move to the retried attempt CONFIRMED on chain.
    landed = await ctx.wait_rows([intent], _confirmed, within=60)
    recovery = (round(trio.current_time() - moved_at, 3)
                if landed and moved_at is not None else None)
    await ctx.wait_settled([intent])
    ev = await ctx.evidence()
    rows = ev.for_intents([intent]).trades
    tolerance = 1.0
    if rows:
        stored = await ctx.topology.db.fetchval(
            "SELECT slippage_tolerance FROM user_settings WHERE user_id = $1", rows[0].user_id, timeout=10)
        tolerance = float(stored) if stored is not None else tolerance
    return ScenarioOutcome((
        slippage_failure_recorded(ev, intent),
        retried_within_tolerance(ev, intent, tolerance),
        recovery_within(recovery, RECOVERY_BOUND_S, what="pool moved -> the retry confirmed"),
    ), recovery)


SEED: Final = (
    Scenario("rpc_timeout", "rpc", True, "RPC cut mid-trade: clean failures, no duplicates, recovery",
             rpc_timeout),
    Scenario("db_connection_loss", "postgres", True,
             "database cut while trades are on the wire: chain-true terminal states, no limbo, recovery",
             db_loss),
    Scenario("slippage_exceeded", "chain", True,
             "pool moved for real under a signed trade: SlippageExceeded recorded, retried within tolerance",
             slippage),
)

# The thirteen checks of the issue -> the (scenario, invariant) pairs that evidence each; "*" is
# every scenario (the global invariants are checked after each one and once more at the end).
SEED_CHECKS: Final[Mapping[int, tuple[tuple[str, str], ...]]] = {
    1: (("rpc_timeout", "rpc_timeout_trades_fail_cleanly"),),
    2: (("rpc_timeout", "no_duplicate_trades_while_rpc_fails"),),
    3: (("rpc_timeout", "trades_execute_after_rpc_recovery"),),
    4: (("db_connection_loss", "db_loss_trades_match_chain"),),
    5: (("db_connection_loss", "no_limbo_after_db_recovery"),),
    6: (("db_connection_loss", "trades_execute_after_db_recovery"),),
    7: (("slippage_exceeded", "slippage_failure_recorded"),),
    8: (("slippage_exceeded", "retried_within_tolerance"),),
    9: (("*", "no_intent_executed_twice_on_chain"),),
    10: (("*", "every_failure_alerted"), ("rpc_timeout", "rpc_outage_alerted"),
         ("db_connection_loss", "db_outage_alerted")),
    11: (("*", "db_equals_chain"),),
    12: (("rpc_timeout", "recovery_within"), ("db_connection_loss", "recovery_within"),
         ("slippage_exceeded", "recovery_within")),
    13: (("*", "only_legal_transitions"),),
}


# ------------------------------------------------------------------------------ the full suite


def degraded_link(fault: Fault, *, hold_s: float = 6.0, trades: int = 2) -> Callable[[ScenarioContext],
                                                                                     Awaitable[ScenarioOutcome]]:
    """A fault the engine must ride through: trades made under it still execute, nothing hangs."""

    async def run(ctx: ScenarioContext) -> ScenarioOutcome:
        async with ctx.fault(fault):
            during = await ctx.drill_many(trades)
            with trio.move_on_after(hold_s + SETTLE_S / 2):
                await ctx.wait_settled(during)
        recovery = await ctx.recover()
        await ctx.wait_settled(ctx.intents)
        ev = await ctx.evidence()
        return ScenarioOutcome((
            renamed(intents_executed(ev, during), "trades_execute_under_fault"),
            trades_settled_cleanly(ev.for_intents(ctx.intents)),
            no_duplicate_attempts(ev.for_intents(ctx.intents), max_attempts=_max_attempts(ctx)),
            recovery_within(recovery, RECOVERY_BOUND_S),
        ), recovery)

    return run


def outage(fault: Fault, *, hold_s: float, stale_prices: bool = False,
           alerted: tuple[str, str, str | None] | None = None,
           ) -> Callable[[ScenarioContext], Awaitable[ScenarioOutcome]]:
    """A dependency out for ``hold_s``: trades made during it end cleanly (executed or failed with a
    reason), nothing multiplies, and after it new trades execute. With ``stale_prices`` the trade
    made during the outage sells a non-stable mint (JUP -> USDC), whose price is then past the
    stale bound: it must not execute (the drill is refused naming the price, or it fails without
    landing). ``alerted`` = (the alert kind the outage must raise, the kind that says it is over,
    their subject or None for any)."""

    async def run(ctx: ScenarioContext) -> ScenarioOutcome:
        mark = await ctx.alert_mark()
        if stale_prices:  # the vault must hold some JUP to sell during the outage
            await ctx.wait_rows(await ctx.drill_many(1, user=0), _confirmed, within=30)
        async with ctx.fault(fault):
            await trio.sleep(hold_s)
            refused_before = len(ctx.refused)
            during = (await ctx.drill_many(1, user=0, input="JUP", output="USDC") if stale_prices
                      else await ctx.drill_many(1))
            refused_during = ctx.refused[refused_before:]
            await trio.sleep(2.0)
        if alerted is not None:
            # The dependency's own recovery: its breaker closes and it says so (``dependency_up``),
            # so the next scenario does not begin inside this outage.
            await ctx.wait_alert(alerted[1], subject=alerted[2], since_id=mark, within=60.0)
        recovery = await ctx.recover()
        await ctx.wait_settled(ctx.intents)
        if alerted is not None:
            await ctx.wait_alert(alerted[0], subject=alerted[2], since_id=mark)
        ev = await ctx.evidence()
        checks = [trades_settled_cleanly(ev.for_intents(ctx.intents)),
                  no_duplicate_attempts(ev.for_intents(ctx.intents), max_attempts=_max_attempts(ctx)),
                  recovery_within(recovery, RECOVERY_BOUND_S)]
        if stale_prices:
            executed = intents_executed(ev, during)
            on_price = [r for r in refused_during if "price" in r]
            ok = executed.figures.get("executed", 0) == 0 and (bool(on_price) or bool(during))
            checks.append(InvariantResult(
                "no_trade_on_stale_prices", ok,
                {**dict(executed.figures), "refused_on_price": on_price[:3], "drilled": len(during)},
                "the trade asked for on a stale price did not execute" if ok else
                "a trade executed on a stale price (or no trade was attempted during the outage)"))
        if alerted is not None:
            checks.append(outage_alerted(ev, kind=alerted[0], subject=alerted[2], since_id=mark))
        return ScenarioOutcome(tuple(checks), recovery)

    return run


async def dropped_transactions(ctx: ScenarioContext) -> ScenarioOutcome:
    """The chain drops every transaction for a while: attempts are resent (same bytes) or expire;
    reconciliation ends every one in the chain's state (an expired attempt is not on chain); a
    dropped intent is then either executed by a retry or -- when enough attempts expired that the
    engine's confirmation-timeout breaker opened (alerted) -- left FAILED, not retried blindly;
    none executes twice, and after the fault new trades execute."""
    mark = await ctx.alert_mark()
    async with ctx.fault(ChainFault(drop_rate=1.0)):
        during = await ctx.drill_many(2)
        await ctx.wait_rows(during, lambda rows: any(t.status is TradeStatus.SUBMITTED for t in rows),
                            within=30)
        await trio.sleep(2.0)
    recovery = await ctx.recover()
    await ctx.wait_settled(ctx.intents)
    ev = await ctx.evidence()
    dropped = ev.for_intents(during)
    not_executed = {i for i in during if not intents_executed(ev, [i]).passed}
    breaker = [a for a in ev.alerts if a.kind == "breaker_opened" and a.id > mark]
    expired = [t for t in dropped.trades if t.failure_reason == FailureReason.EXPIRED]
    stopped_ok = all(all(t.status is TradeStatus.FAILED for t in dropped.attempts().get(i, []))
                     for i in not_executed) and (not not_executed or bool(breaker))
    resolved = InvariantResult(
        "dropped_intents_resolved", bool(during) and bool(expired) and stopped_ok,
        {"intents": len(during), "executed_by_retry": len(during) - len(not_executed),
         "stopped_by_breaker": len(not_executed), "expired_attempts": len(expired),
         "breakers_opened": sorted({a.subject for a in breaker})},
        f"{len(during) - len(not_executed)} dropped intent(s) executed by a retry, {len(not_executed)} "
        f"stopped by an open breaker; {len(expired)} attempt(s) expired")
    return ScenarioOutcome((
        resolved,
        combined("dropped_trades_reconciled", trades_settled_cleanly(dropped, minimum=2),
                 db_equals_chain(dropped)),
        no_duplicate_attempts(ev.for_intents(ctx.intents), max_attempts=_max_attempts(ctx)),
        recovery_within(recovery, RECOVERY_BOUND_S),
    ), recovery)


async def kill_mid_trade(ctx: ScenarioContext) -> ScenarioOutcome:
    """kill -9 of the engine with trades signed and on the wire; the restarted engine reconciles
    them to the chain's truth before trading again."""
    slow = ToxicFault(RPC_BOTH, "latency", {"latency": 600, "jitter": 0}, stream="upstream")
    async with ctx.fault(slow):
        during = await ctx.drill_many(2)
        await ctx.wait_signed(during, within=30)
        await ctx.topology.kill_engine()
        ctx.faults.append({"kind": "kill -9", "pid_killed": True, "at_s": ctx.elapsed()})
    start = trio.current_time()
    await ctx.topology.start_engine()
    await ctx.topology.wait_ready()
    recovery = await ctx.recover()
    total = None if recovery is None else round(trio.current_time() - start, 3)
    await ctx.wait_settled(ctx.intents)
    ev = await ctx.evidence()
    scenario = ev.for_intents(during)
    return ScenarioOutcome((
        combined("killed_trades_reconciled", trades_settled_cleanly(scenario), db_equals_chain(scenario)),
        no_duplicate_attempts(ev.for_intents(ctx.intents), max_attempts=_max_attempts(ctx)),
        recovery_within(total, RECOVERY_BOUND_S * 2, what="kill -9 -> restarted and a trade confirmed"),
    ), total)


async def crash_storm(ctx: ScenarioContext, *, actor: str = "http", crashes: int = 12) -> ScenarioOutcome:
    """An actor crashed faster than its supervisor's intensity allows: the supervisor gives up and
    escalates (a ``supervisor_escalated`` alert), the escalation is contained (the same engine
    process lives on and its parent restarts the branch), and trading resumes."""
    mark = await ctx.alert_mark()
    pid = ctx.topology.engine_pid
    before = await ctx.topology.engine_status()
    done = 0
    with trio.move_on_after(60):
        while done < crashes:
            try:
                await ctx.topology.ctl("crash", {"actor": actor}, timeout=5.0)
                done += 1
            except ControlError:
                pass  # between its crash and its restart the actor is not there: ask again
            await trio.sleep(0.05)
    ctx.faults.append({"kind": "crash_storm", "actor": actor, "crashes": done, "at_s": ctx.elapsed()})
    recovery = await ctx.recover()
    await ctx.wait_settled(ctx.intents)
    await ctx.wait_alert("supervisor_escalated", since_id=mark)
    ev = await ctx.evidence()
    after = await ctx.topology.engine_status()
    same_process = pid is not None and ctx.topology.engine_pid == pid
    escalated = [a for a in ev.alerts if a.kind == "supervisor_escalated" and a.id > mark]
    restarts = (None if before is None or after is None
                else int(after.get("restarts", 0)) - int(before.get("restarts", 0)))
    passed = same_process and done == crashes and bool(escalated)
    return ScenarioOutcome((
        InvariantResult("escalation_contained", passed,
                        {"crashes": done, "same_engine_process": same_process,
                         "supervisor_escalated_alerts": len(escalated),
                         "escalated_subjects": sorted({a.subject for a in escalated}),
                         "restarts_during": restarts},
                        f"{done} crash(es) of {actor!r}; {len(escalated)} escalation(s); engine "
                        + ("the same process" if same_process else "NOT the same process")),
        recovery_within(recovery, RECOVERY_BOUND_S),
    ), recovery)


NEMESIS_MENU: Final[tuple[Fault, ...]] = (
    ToxicFault(RPC_BOTH, "latency", {"latency": 400, "jitter": 300}),
    ToxicFault(("rpc",), "reset_peer", {"timeout": 0}),
    ToxicFault(("rpc",), "slicer", {"average_size": 64, "size_variation": 32, "delay": 500}),
    ToxicFault(("postgres",), "latency", {"latency": 300, "jitter": 100}),
    ToxicFault(("postgres",), "reset_peer", {"timeout": 500}),
    ToxicFault(("redis",), "timeout", {"timeout": 0}),
    ToxicFault(("price",), "timeout", {"timeout": 0}),
    ProxyDown(("redis",)),
    ProxyDown(("rpc",)),
    ChainFault(drop_rate=0.5),
    ChainFault(land_delay_slots=5),
)


async def nemesis(ctx: ScenarioContext, *, duration_s: float = 60.0) -> ScenarioOutcome:
    """A seeded schedule of faults from the menu above, overlapping trades, for ``duration_s``;
    afterwards every invariant must hold. The report's seed replays the same schedule."""
    schedule = []
    t = 0.0
    while t < duration_s:
        hold = ctx.rng.uniform(2.0, 8.0)
        schedule.append((ctx.rng.randrange(len(NEMESIS_MENU)), hold))
        t += hold + ctx.rng.uniform(0.5, 3.0)

    async def trades() -> None:
        while True:
            await ctx.drill()
            await trio.sleep(ctx.rng.uniform(1.0, 4.0))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(trades)
        for index, hold in schedule:
            async with ctx.fault(NEMESIS_MENU[index]):
                await trio.sleep(hold)
            await trio.sleep(1.0)
        nursery.cancel_scope.cancel()
    recovery = await ctx.recover()
    await ctx.wait_settled(ctx.intents)
    ev = await ctx.evidence()
    return ScenarioOutcome((
        trades_settled_cleanly(ev.for_intents(ctx.intents)),
        no_duplicate_attempts(ev.for_intents(ctx.intents), max_attempts=_max_attempts(ctx)),
        recovery_within(recovery, RECOVERY_BOUND_S),
    ), recovery)


FULL: Final = (
    *SEED,
    Scenario("rpc_failover", "rpc", True, "primary RPC down: trades go through the backup",
             degraded_link(ProxyDown(("rpc",)))),
    Scenario("rpc_latency", "rpc", True, "500 ms latency on the RPC link",
             degraded_link(ToxicFault(RPC_BOTH, "latency", {"latency": 500, "jitter": 0}))),
    Scenario("rpc_jitter", "rpc", True, "latency with heavy jitter on the RPC link",
             degraded_link(ToxicFault(RPC_BOTH, "latency", {"latency": 100, "jitter": 400}))),
    Scenario("rpc_slicer", "rpc", True, "RPC answers sliced into small delayed chunks",
             degraded_link(ToxicFault(RPC_BOTH, "slicer", {"average_size": 32, "size_variation": 16,
                                                          "delay": 1000}))),
    Scenario("rpc_bandwidth", "rpc", True, "RPC link limited to 20 KB/s",
             degraded_link(ToxicFault(RPC_BOTH, "bandwidth", {"rate": 20}))),
    Scenario("price_feed_down", "price", True, "price API refuses connections past the stale bound",
             outage(ProxyDown(("price",)), hold_s=10.0, stale_prices=True,
                    alerted=("dependency_down", "dependency_up", "price_api")), touches_rpc=False),
    Scenario("price_feed_stale", "price", True, "price API hangs (no answers) past the stale bound",
             outage(ToxicFault(("price",), "timeout", {"timeout": 0}), hold_s=10.0, stale_prices=True,
                    alerted=("price_stale", "price_fresh", None)), touches_rpc=False),
    Scenario("redis_down", "redis", True, "Redis down: the node keeps trading alone",
             degraded_link(ProxyDown(("redis",))), touches_rpc=False),
    Scenario("postgres_reset_peer", "postgres", True, "every Postgres connection reset",
             outage(ToxicFault(("postgres",), "reset_peer", {"timeout": 0}), hold_s=4.0), touches_rpc=False),
    Scenario("dropped_transactions", "chain", True, "the chain drops every transaction for a while",
             dropped_transactions),
    Scenario("kill_9_mid_trade", "process", True, "kill -9 of the engine with trades on the wire",
             kill_mid_trade),
    Scenario("crash_storm", "process", True, "an actor crashed past its supervisor's intensity",
             crash_storm, touches_rpc=False),
    Scenario("nemesis", "nemesis", True, "a seeded schedule of mixed faults for a bounded time", nemesis),
)


def suite(name: str, only: Sequence[str] = ()) -> tuple[Scenario, ...]:
    """The named suite (``seed`` or ``full``), narrowed to ``only`` scenario names if given."""
    chosen = {"seed": SEED, "full": FULL}[name]
    if not only:
        return chosen
    known = {s.name: s for s in FULL}
    missing = [n for n in only if n not in known]
    if missing:
        raise KeyError(f"unknown scenario(s) {', '.join(missing)}; known: {', '.join(known)}")
    return tuple(known[n] for n in only)
