"""The Solana RPC client: `RpcClient` (trio-native, one owner) and `RpcClientActor` (the shared one).

What it owns: the HTTP connections to the primary (`SOLANA_RPC_URL`) and backup
(`SOLANA_RPC_BACKUP_URL`) JSON-RPC endpoints, one `CircuitBreaker` per endpoint, the token
bucket of the provider's quota, and the `xorj_rpc_*` metrics. Requests are solders' typed request
objects (`solders.rpc.requests`), answers are solders' typed responses (`solders.rpc.responses`).

Which failure it contains: a stalled, failing or throttling RPC node. No call outlives its
deadline; a node that times out, refuses, answers 5xx/429 or says it is unhealthy is retried with
`backoff_delay` and failed over; when every endpoint is failing the breakers open and callers get
`RpcUnavailable` at once instead of piling up. Callers only ever see the typed errors below.

- Deadlines: every call runs under `trio.move_on_at(deadline)` at its call site (`_exchange`); each
  HTTP attempt gets its own, shorter deadline inside it, and httpx's timeouts are a safety net
  behind both. Waiting for a rate-limit token counts against the call's deadline.
- Retries: reads are retried; `sendTransaction` is retried by POSTing the *same bytes* again --
  the body is serialised once per call, so a retry is byte-identical: same signed transaction,
  same signature, cannot execute twice. This module never signs and never re-signs. JSON-RPC
  errors (simulation failed, blockhash not found, already processed, bad params) are answers,
  not faults: they are never retried and count as successes for the breaker.
- Fail-over: the primary is preferred whenever its breaker lets a call through. An attempt that
  fails on one endpoint is retried on the other one at once (no backoff) and on the same one only
  after `backoff_delay` (or the node's Retry-After, if longer; a wait that would end past the
  deadline is not started -- the call fails at once). When the primary's breaker is open, calls
  go to the backup without touching the primary; once the breaker half-opens the next call -- or
  the actor's periodic `getHealth` probe, so that a cheap probe rather than a trade is the trial
  -- goes to the primary again, and a success closes its breaker: traffic is back on the primary.
- Errors: `RpcUnavailable` when no endpoint answered (transport errors, timeouts, 5xx/429,
  -32005 "node unhealthy" after the retries and the fail-over, or breakers open: `reason` says
  which), with `RpcTimeout` when the call's deadline passed and `RpcRateLimited` when no token
  could come in time (nothing was sent); `RpcNodeError(code, message, data)` when the node
  answered with a JSON-RPC error, with `TransactionSimulationFailed` (-32002, carrying the
  simulation's `err` and `logs`) and its `BlockhashNotFound` and `AlreadyProcessed` (this exact
  transaction already landed: for a re-send, the first send had succeeded); `RpcMalformedResponse`
  when a well-formed answer does not parse as the expected solders type.
- Rate limit: one `TokenBucket` (`actors.rate_limit`) per client; one token per JSON-RPC call
  (a batch of n costs n), taken before each attempt, retries included.
- Health: `RpcClient.health()` returns an `RpcHealth` (the engine's DependencyHealth fields plus
  the active endpoint and each breaker's state); the actor answers `GetRpcHealth` with it.
- Secrets: endpoints are labelled "primary"/"backup" in metrics, logs and health, never by URL
  (a provider URL often carries an API key); `redact_url` is the only way a URL is ever shown,
  and httpx's own request log is filtered through it.

`RpcClientActor` serves `RpcCall` and the other request messages below for the whole node. An
actor handles one message at a time, but an RPC call takes milliseconds to seconds, so handling
calls inline would queue every caller behind the slowest node answer. Instead the actor takes a
message only when a slot of its `trio.CapacityLimiter` is free and serves it in a task of a
nursery it owns, answering through the request's reply slot. Requests beyond the limit stay in
the mailbox (back-pressure on callers, and they survive a restart). When an incarnation crashes,
the requests in flight fail with `ActorDied` (`ActorStopped` if it was being shut down) and the
queued ones are answered by the next incarnation.

May import: the standard library, trio, httpx, attrs, prometheus_client, solders, supervisors,
actors. Never imports `engine`.
"""

from __future__ import annotations

import json
import logging
import random
import re
import time
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any, Final, Literal, Protocol, TypeVar
from urllib.parse import urlsplit

import attrs
import httpx
import trio
from prometheus_client import Counter, Gauge, Histogram
from solders.account_decoder import UiAccountEncoding
from solders.commitment_config import CommitmentLevel
from solders.errors import SerdeJSONError
from solders.hash import Hash
from solders.pubkey import Pubkey
from solders.rpc.config import (
    RpcAccountInfoConfig,
    RpcContextConfig,
    RpcSendTransactionConfig,
    RpcSignaturesForAddressConfig,
    RpcSignatureStatusConfig,
    RpcSimulateTransactionConfig,
    RpcTokenAccountsFilterMint,
    RpcTokenAccountsFilterProgramId,
    RpcTransactionConfig,
)
from solders.rpc.requests import (
    Body,
    GetAccountInfo,
    GetBalance,
    GetBlockHeight,
    GetHealth,
    GetLatestBlockhash,
    GetMultipleAccounts,
    GetSignaturesForAddress,
    GetSignatureStatuses,
    GetSlot,
    GetTokenAccountBalance,
    GetTokenAccountsByOwner,
    GetTransaction,
    IsBlockhashValid,
    SendRawTransaction,
    SimulateVersionedTransaction,
)
from solders.rpc.responses import (
    GetAccountInfoResp,
    GetBalanceResp,
    GetBlockHeightResp,
    GetHealthResp,
    GetLatestBlockhashResp,
    GetMultipleAccountsResp,
    GetSignaturesForAddressResp,
    GetSignatureStatusesResp,
    GetSlotResp,
    GetTokenAccountBalanceResp,
    GetTokenAccountsByOwnerResp,
    GetTransactionResp,
    IsBlockhashValidResp,
    RpcSimulateTransactionResult,
    SendTransactionResp,
    SimulateTransactionResp,
)
from solders.signature import Signature
from solders.transaction import VersionedTransaction
from solders.transaction_status import (
    TransactionErrorFieldless,
    TransactionErrorType,
    UiTransactionEncoding,
)

from actors.actor import Actor
from actors.rate_limit import RateLimited, TokenBucket
from supervisors.backoff import backoff_delay
from supervisors.breaker import BreakerOpen, BreakerPolicy, BreakerState, CircuitBreaker
from supervisors.context import ChildContext
from supervisors.registry import ActorNotFound, ActorRef, ask
from supervisors.request import ActorDied, ActorStopped, AskError, Request
from supervisors.supervisor import describe

log = logging.getLogger("xorj.rpc")

EndpointLabel = Literal["primary", "backup"]

# JSON-RPC error codes of the Solana validator that decide what happens to an answer.
SEND_TRANSACTION_PREFLIGHT_FAILURE = -32002
NODE_UNHEALTHY = -32005

# The attempt's own deadline ends this much before the call's, so that a stalled node is seen
# (and counted by its breaker) by the attempt rather than by the caller's deadline.
_ATTEMPT_MARGIN_S = 0.005


# ---------------------------------------------------------------------------------------- errors


class RpcError(Exception):
    """Base of every error an RPC call raises."""


class RpcUnavailable(RpcError):
    """No endpoint gave an answer: transport failures, 5xx/429, breakers open, or rate-limited.

    `reason` says why (redacted: never a URL); `attempts` is how many HTTP requests were made.
    """

    def __init__(self, method: str, reason: str, *, attempts: int = 0) -> None:
        super().__init__(f"{method}: RPC unavailable after {attempts} attempt(s): {reason}")
        self.method = method
        self.reason = reason
        self.attempts = attempts


class RpcTimeout(RpcUnavailable):
    """The call's deadline passed before any endpoint answered."""


class RpcRateLimited(RpcUnavailable):
    """No rate-limit token could be had before the call's deadline (nothing was sent)."""


class RpcMalformedResponse(RpcError):
    """A well-formed JSON-RPC answer whose result does not parse as the expected solders type."""

    def __init__(self, method: str, detail: str) -> None:
        super().__init__(f"{method}: unexpected response shape: {detail}")
        self.method = method


class RpcNodeError(RpcError):
    """The node answered with a JSON-RPC error object: the request was refused, not lost."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(f"JSON-RPC error {code}: {message}")
        self.code = code
        self.message = message
        self.data = data


class TransactionSimulationFailed(RpcNodeError):
    """-32002: sendTransaction's preflight simulation failed; `err` and `logs` say why."""

    def __init__(
        self,
        code: int,
        message: str,
        data: Any,
        *,
        err: TransactionErrorType | None,
        logs: list[str],
        result: RpcSimulateTransactionResult | None,
    ) -> None:
        super().__init__(code, message, data)
        self.err = err
        self.logs = logs
        self.result = result


class BlockhashNotFound(TransactionSimulationFailed):
    """The transaction's blockhash is unknown to the node (expired, or the node lags)."""


class AlreadyProcessed(TransactionSimulationFailed):
    """This exact transaction already landed: the caller's send succeeded earlier."""


def rpc_error_from(error: Any) -> RpcNodeError:
    """The typed error for a JSON-RPC `error` object."""
    if not isinstance(error, dict):
        return RpcNodeError(0, f"malformed error object: {str(error)[:200]}")
    code = error.get("code")
    code = code if isinstance(code, int) else 0
    message = str(error.get("message", ""))
    data = error.get("data")
    if code != SEND_TRANSACTION_PREFLIGHT_FAILURE or not isinstance(data, dict):
        return RpcNodeError(code, message, data)
    try:
        result: RpcSimulateTransactionResult | None = RpcSimulateTransactionResult.from_json(
            json.dumps(data)
        )
    except SerdeJSONError:
        result = None
    err = result.err if result is not None else None
    logs = list(result.logs or []) if result is not None else []
    cls: type[TransactionSimulationFailed] = TransactionSimulationFailed
    if err == TransactionErrorFieldless.BlockhashNotFound:
        cls = BlockhashNotFound
    elif err == TransactionErrorFieldless.AlreadyProcessed:
        cls = AlreadyProcessed
    return cls(code, message, data, err=err, logs=logs, result=result)


# ---------------------------------------------------------------------------------------- metrics

RPC_REQUESTS = Counter(
    "xorj_rpc_requests_total",
    "Solana JSON-RPC requests by method, endpoint (primary/backup) and outcome",
    ["method", "endpoint", "outcome"],
)
RPC_LATENCY = Histogram(
    "xorj_rpc_latency_seconds",
    "Time from sending a Solana JSON-RPC request to its answer (or failure), per attempt",
    ["method", "endpoint"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
RPC_BREAKER = Gauge(
    "xorj_rpc_breaker_state",
    "Circuit breaker of each RPC endpoint: 0 closed, 1 half-open, 2 open (as of its last change)",
    ["endpoint"],
)

# Outcomes (the `outcome` label): ok, rpc_error (the node answered with a JSON-RPC error),
# http_error (non-200, 429 and 5xx included), node_unhealthy (-32005), timeout, transport_error,
# invalid_response (not JSON), cancelled (the caller gave up mid-request), breaker_open (refused
# without a request), rate_limited (refused without a request).


# ---------------------------------------------------------------------------------------- secrets

_URL_IN_TEXT = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>]+")


def redact_url(url: str | httpx.URL) -> str:
    """`scheme://host[:port]` -- userinfo, path, query and fragment may carry keys and are dropped."""
    try:
        parts = urlsplit(str(url))
        host = parts.hostname or "?"
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<unparseable url>"
    hidden = parts.username or parts.password or parts.query or parts.fragment or parts.path.strip("/")
    return f"{parts.scheme}://{host}{port}" + ("/<redacted>" if hidden else "")


def scrub(text: str) -> str:
    """`text` with every URL in it redacted (exception messages may quote the URL)."""
    return _URL_IN_TEXT.sub(lambda m: redact_url(m.group(0)), text)


class _RedactUrls(logging.Filter):
    """httpx logs every request with its full URL at INFO; rewrite it before any handler sees it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                redact_url(a) if isinstance(a, httpx.URL) else scrub(a) if isinstance(a, str) else a
                for a in record.args
            )
        if isinstance(record.msg, str):
            record.msg = scrub(record.msg)
        return True


_REDACT = _RedactUrls()
for _name in ("httpx", "httpcore"):
    _logger = logging.getLogger(_name)
    if _REDACT not in _logger.filters:
        _logger.addFilter(_REDACT)


# ---------------------------------------------------------------------------------------- health


@attrs.frozen
class RpcHealth:
    """The RPC dependency as the client last saw it; same fields as the engine's DependencyHealth,
    plus which endpoint traffic goes to and each endpoint's breaker state."""

    name: str
    state: Literal["up", "down", "connecting"]
    latency_ms: float | None
    last_error: str | None
    active_endpoint: EndpointLabel
    breakers: tuple[tuple[EndpointLabel, str], ...]


@attrs.frozen
class RetryPolicy:
    """`retries` extra attempts per call (across endpoints), spaced by `backoff_delay`."""

    retries: int = 2
    min_s: float = 0.05
    max_s: float = 1.0
    jitter: float = 0.25

    def __attrs_post_init__(self) -> None:
        if self.retries < 0 or self.min_s < 0 or self.max_s < self.min_s or self.jitter < 0:
            raise ValueError(f"invalid retry policy {self}")


# ---------------------------------------------------------------------------------------- client


class _Parseable(Protocol):
    @staticmethod
    def from_json(raw: str) -> object: ...


R = TypeVar("R", bound=_Parseable)


class _EndpointFault(Exception):
    """An attempt failed because of the endpoint (not the request): retry, fail over, count it."""

    def __init__(self, outcome: str, reason: str, retry_after_s: float | None = None) -> None:
        super().__init__(reason)
        self.outcome = outcome
        self.reason = reason
        self.retry_after_s = retry_after_s  # the node's Retry-After (429/503), in seconds


@attrs.define(eq=False)
class _Endpoint:
    label: EndpointLabel
    url: str = attrs.field(repr=redact_url)
    breaker: CircuitBreaker


@attrs.frozen
class _Encoded:
    """One call's wire body, serialised once: every retry sends exactly these bytes."""

    method: str
    body: bytes
    tokens: int  # rate-limit tokens the request costs (one per JSON-RPC call, batches included)


class SolanaRpc:
    """Solana's typed RPC methods over one abstract `call` / `batch`: `RpcClient` implements them
    over HTTP, `ActorRpc` by asking the RPC client actor. Callers (trade execution, portfolio
    reads, the router) take a `SolanaRpc` and work with either."""

    default_timeout_s: float = 5.0

    async def call(
        self, request: Body, resp_type: type[R], *, timeout: float | None = None, retry: bool = True
    ) -> R:
        raise NotImplementedError

    async def batch(
        self, requests: Sequence[Body], resp_type: type[R], *, timeout: float | None = None
    ) -> list[R | RpcNodeError]:
        raise NotImplementedError

    # ------------------------------------------------------------------ typed helpers

    async def get_health(self, *, timeout: float | None = None) -> GetHealthResp:
        return await self.call(GetHealth(), GetHealthResp, timeout=timeout)

    async def get_slot(
        self, commitment: CommitmentLevel | None = None, *, timeout: float | None = None
    ) -> int:
        resp = await self.call(GetSlot(_context(commitment)), GetSlotResp, timeout=timeout)
        return resp.value

    async def get_block_height(
        self, commitment: CommitmentLevel | None = None, *, timeout: float | None = None
    ) -> int:
        resp = await self.call(GetBlockHeight(_context(commitment)), GetBlockHeightResp, timeout=timeout)
        return resp.value

    async def get_latest_blockhash(
        self, commitment: CommitmentLevel | None = None, *, timeout: float | None = None
    ) -> GetLatestBlockhashResp:
        return await self.call(GetLatestBlockhash(_context(commitment)), GetLatestBlockhashResp,
                               timeout=timeout)

    async def is_blockhash_valid(
        self, blockhash: Hash, commitment: CommitmentLevel | None = None, *, timeout: float | None = None
    ) -> bool:
        resp = await self.call(IsBlockhashValid(blockhash, _context(commitment)), IsBlockhashValidResp,
                               timeout=timeout)
        return resp.value

    async def get_balance(
        self, pubkey: Pubkey, commitment: CommitmentLevel | None = None, *, timeout: float | None = None
    ) -> int:
        resp = await self.call(GetBalance(pubkey, _context(commitment)), GetBalanceResp, timeout=timeout)
        return resp.value

    async def get_account_info(
        self, pubkey: Pubkey, commitment: CommitmentLevel | None = None, *, timeout: float | None = None
    ) -> GetAccountInfoResp:
        return await self.call(GetAccountInfo(pubkey, _accounts(commitment)), GetAccountInfoResp,
                               timeout=timeout)

    async def get_multiple_accounts(
        self, pubkeys: Sequence[Pubkey], commitment: CommitmentLevel | None = None,
        *, timeout: float | None = None,
    ) -> GetMultipleAccountsResp:
        return await self.call(GetMultipleAccounts(pubkeys, _accounts(commitment)),
                               GetMultipleAccountsResp, timeout=timeout)

    async def get_multiple_accounts_batch(
        self, key_lists: Sequence[Sequence[Pubkey]], commitment: CommitmentLevel | None = None,
        *, timeout: float | None = None,
    ) -> list[GetMultipleAccountsResp | RpcNodeError]:
        """Several ``getMultipleAccounts`` (each at most 100 keys) as one JSON-RPC batch: one answer,
        or the node's error, per key list, in order. One POST carries many calls, so thousands of
        keys cost a few HTTP exchanges instead of one per hundred keys."""
        config = _accounts(commitment)
        return await self.batch([GetMultipleAccounts(list(keys), config) for keys in key_lists],
                                GetMultipleAccountsResp, timeout=timeout)

    async def get_token_account_balance(
        self, account: Pubkey, commitment: CommitmentLevel | None = None, *, timeout: float | None = None
    ) -> GetTokenAccountBalanceResp:
        return await self.call(GetTokenAccountBalance(account, commitment), GetTokenAccountBalanceResp,
                               timeout=timeout)

    async def get_token_accounts_by_owner(
        self, owner: Pubkey, filter_: RpcTokenAccountsFilterMint | RpcTokenAccountsFilterProgramId,
        commitment: CommitmentLevel | None = None, *, timeout: float | None = None,
    ) -> GetTokenAccountsByOwnerResp:
        return await self.call(GetTokenAccountsByOwner(owner, filter_, _accounts(commitment)),
                               GetTokenAccountsByOwnerResp, timeout=timeout)

    async def get_signature_statuses(
        self, signatures: Sequence[Signature], *, search_transaction_history: bool = False,
        timeout: float | None = None,
    ) -> GetSignatureStatusesResp:
        config = RpcSignatureStatusConfig(search_transaction_history)
        return await self.call(GetSignatureStatuses(signatures, config), GetSignatureStatusesResp,
                               timeout=timeout)

    async def get_signatures_for_address(
        self, address: Pubkey, config: RpcSignaturesForAddressConfig | None = None,
        *, timeout: float | None = None,
    ) -> GetSignaturesForAddressResp:
        return await self.call(GetSignaturesForAddress(address, config), GetSignaturesForAddressResp,
                               timeout=timeout)

    async def get_transaction(
        self, signature: Signature, config: RpcTransactionConfig | None = None,
        *, timeout: float | None = None,
    ) -> GetTransactionResp:
        return await self.call(GetTransaction(signature, config or _tx_config()), GetTransactionResp,
                               timeout=timeout)

    async def get_transactions(
        self, signatures: Sequence[Signature], config: RpcTransactionConfig | None = None,
        *, timeout: float | None = None,
    ) -> list[GetTransactionResp | RpcNodeError]:
        """Many getTransaction in one POST (what history backfills spend their quota on)."""
        config = config or _tx_config()
        return await self.batch([GetTransaction(s, config) for s in signatures], GetTransactionResp,
                                timeout=timeout)

    async def send_transaction(
        self, signed: bytes, *, skip_preflight: bool = False,
        preflight_commitment: CommitmentLevel | None = None, timeout: float | None = None,
    ) -> Signature:
        """Submit already-signed wire bytes; retries re-send these exact bytes (same signature).

        Raises `TransactionSimulationFailed` (with `err` and `logs`), `BlockhashNotFound`,
        `AlreadyProcessed` (it landed before: the send had succeeded), `RpcUnavailable`.
        """
        config = RpcSendTransactionConfig(skip_preflight=skip_preflight,
                                          preflight_commitment=preflight_commitment)
        resp = await self.call(SendRawTransaction(signed, config), SendTransactionResp, timeout=timeout)
        return resp.value

    async def simulate_transaction(
        self, tx: VersionedTransaction, config: RpcSimulateTransactionConfig | None = None,
        *, timeout: float | None = None,
    ) -> SimulateTransactionResp:
        return await self.call(SimulateVersionedTransaction(tx, config), SimulateTransactionResp,
                               timeout=timeout)



class RpcClient(SolanaRpc):
    """A Solana JSON-RPC client for trio: deadlines, retries, fail-over, breakers, rate limit.

    Use it as `async with RpcClient(url, backup) as rpc: await rpc.get_slot()`. Any number of tasks
    of one trio run may share one instance (it is not thread-safe). Every method takes `timeout`
    (seconds, the whole call's deadline, retries and waiting for tokens included); None means the
    client's `default_timeout_s`.
    """

    def __init__(
        self,
        primary_url: str,
        backup_url: str | None = None,
        *,
        default_timeout_s: float = 5.0,
        attempt_timeout_s: float = 2.0,
        connect_timeout_s: float = 1.0,
        rate_per_s: float = 40.0,
        burst: int = 40,
        breaker_policy: BreakerPolicy | None = None,
        retry: RetryPolicy | None = None,
        max_connections: int = 64,
        max_batch: int | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if default_timeout_s <= 0 or attempt_timeout_s <= 0 or connect_timeout_s <= 0:
            raise ValueError("timeouts must be > 0")
        policy = breaker_policy or BreakerPolicy(consecutive_failures=3, recovery_s=5.0)
        self._endpoints = [_Endpoint("primary", primary_url, self._breaker("primary", policy))]
        if backup_url:
            self._endpoints.append(_Endpoint("backup", backup_url, self._breaker("backup", policy)))
        max_batch = min(20, burst) if max_batch is None else max_batch
        if not 1 <= max_batch <= burst:
            raise ValueError(f"max_batch must be in [1, burst={burst}], got {max_batch}")
        self.default_timeout_s = default_timeout_s
        self.max_batch = max_batch
        self.attempt_timeout_s = attempt_timeout_s
        self.retry = retry or RetryPolicy()
        self.bucket = TokenBucket(rate_per_s, burst)
        self._rng = rng or random.Random()
        self._http = httpx.AsyncClient(
            # The safety net behind the trio deadlines: never wait on a socket longer than this.
            timeout=httpx.Timeout(attempt_timeout_s + 1.0, connect=connect_timeout_s),
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
            headers={"content-type": "application/json"},
            follow_redirects=False,
        )
        self._last_ok: bool | None = None
        self._last_error: str | None = None
        self._last_latency_s: float | None = None

    @staticmethod
    def _breaker(label: EndpointLabel, policy: BreakerPolicy) -> CircuitBreaker:
        def on_change(name: str, old: BreakerState, new: BreakerState) -> None:
            RPC_BREAKER.labels(label).set(new.gauge_value)
            level = logging.WARNING if new is BreakerState.OPEN else logging.INFO
            log.log(level, f"rpc breaker {name} {old.value} -> {new.value}",
                    extra={"event": "breaker", "endpoint": label, "from": old.value, "to": new.value})

        RPC_BREAKER.labels(label).set(BreakerState.CLOSED.gauge_value)
        return CircuitBreaker(f"rpc:{label}", policy, clock=time.monotonic, on_change=on_change)

    async def __aenter__(self) -> RpcClient:
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        with trio.CancelScope(shield=True), trio.move_on_after(1.0):
            await self._http.aclose()

    # ------------------------------------------------------------------ observing

    def breaker(self, label: EndpointLabel) -> CircuitBreaker:
        for ep in self._endpoints:
            if ep.label == label:
                return ep.breaker
        raise KeyError(label)

    @property
    def active_endpoint(self) -> EndpointLabel:
        """Where the next call goes first: the primary unless its breaker is open."""
        for ep in self._endpoints:
            if ep.breaker.state is not BreakerState.OPEN:
                return ep.label
        return "primary"

    def health(self) -> RpcHealth:
        breakers = tuple((ep.label, ep.breaker.state.value) for ep in self._endpoints)
        if self._last_ok is None:
            state: Literal["up", "down", "connecting"] = "connecting"
        elif all(ep.breaker.state is BreakerState.OPEN for ep in self._endpoints) or not self._last_ok:
            state = "down"
        else:
            state = "up"
        latency = None if self._last_latency_s is None else round(self._last_latency_s * 1000.0, 3)
        return RpcHealth("solana_rpc", state, latency, self._last_error, self.active_endpoint, breakers)

    # ------------------------------------------------------------------ the generic calls

    async def call(
        self, request: Body, resp_type: type[R], *, timeout: float | None = None, retry: bool = True
    ) -> R:
        """Send one solders request, parse the answer as `resp_type`, raise the typed error."""
        encoded = _encode_one(request)
        payload, text = await self._exchange(encoded, timeout, retry=retry)
        if not isinstance(payload, dict):
            raise RpcMalformedResponse(encoded.method, f"not a JSON object: {type(payload).__name__}")
        if "error" in payload:
            raise rpc_error_from(payload["error"])
        return _parse(encoded.method, resp_type, text)

    async def batch(
        self, requests: Sequence[Body], resp_type: type[R], *, timeout: float | None = None
    ) -> list[R | RpcNodeError]:
        """Several requests of one kind, batched; one answer (or node error) per request, in order.

        Sent as POSTs of at most `max_batch` calls, one after another, all within `timeout`; each
        call costs one rate-limit token. Answers are matched to requests by id (a node may answer
        a batch in any order), which solders' positional `batch_from_json` does not do; each
        element is parsed with `resp_type.from_json`.
        """
        timeout = self.default_timeout_s if timeout is None else timeout
        deadline = trio.current_time() + timeout
        out: list[R | RpcNodeError] = []
        for start in range(0, len(requests), self.max_batch):
            chunk = requests[start : start + self.max_batch]
            encoded = _encode_batch(chunk)
            remaining = deadline - trio.current_time()
            if remaining <= 0:
                self._failed(f"deadline of {timeout:g}s passed mid-batch")
                raise RpcTimeout(encoded.method, f"no answer within {timeout:g}s (batch at {start})")
            payload, _ = await self._exchange(encoded, remaining, retry=True)
            out.extend(_batch_answers(encoded.method, resp_type, payload, len(chunk)))
        return out

    async def probe_primary(self, *, timeout: float = 1.0) -> bool:
        """While traffic is on the backup: spend the primary's half-open trial on a `getHealth`.

        Does nothing (and touches no network) unless there is a backup and the primary's breaker
        is half-open. Returns True when the primary answered and its breaker closed.
        """
        primary = self._endpoints[0]
        if len(self._endpoints) < 2 or primary.breaker.state is not BreakerState.HALF_OPEN:
            return False
        if not self.bucket.try_acquire():
            return False
        encoded = _encode_one(GetHealth())
        with trio.move_on_after(timeout):
            try:
                await self._attempt(primary, encoded, trio.current_time() + timeout)
            except (_EndpointFault, BreakerOpen):
                return False
            return True  # it answered: the trial succeeded and closed the primary's breaker
        return False

    # ------------------------------------------------------------------ the machinery

    async def _exchange(self, encoded: _Encoded, timeout: float | None, *, retry: bool) -> tuple[Any, str]:
        """POST `encoded` until an endpoint answers, within the call's deadline; the decoded answer."""
        timeout = self.default_timeout_s if timeout is None else timeout
        if not timeout > 0:
            raise ValueError(f"timeout must be > 0, got {timeout}")
        method = encoded.method
        attempts, last = 0, "no endpoint was tried"
        max_attempts = 1 + (self.retry.retries if retry else 0)
        failed_on: _Endpoint | None = None
        refused: set[str] = set()  # endpoints whose half-open breaker refused this call
        retry_after = 0.0
        deadline = trio.current_time() + timeout
        with trio.move_on_at(deadline) as call_scope:  # the call's deadline
            while True:
                candidates = [ep for ep in self._endpoints if ep.breaker.state is not BreakerState.OPEN]
                if failed_on in candidates and len(candidates) > 1:
                    candidates.remove(failed_on)  # fail over first; back to it only after a backoff
                    candidates.append(failed_on)
                if not candidates:
                    for ep in self._endpoints:
                        RPC_REQUESTS.labels(method, ep.label, "breaker_open").inc()
                    opened = ", ".join(ep.label for ep in self._endpoints)
                    reason = f"circuit breaker open ({opened})" + (f"; last: {last}" if attempts else "")
                    self._failed(reason)
                    raise RpcUnavailable(method, reason, attempts=attempts)
                ep = candidates[0]
                if attempts and trio.current_time() >= deadline - 2 * _ATTEMPT_MARGIN_S:
                    break  # no time left for another attempt: do not charge `ep`'s breaker for it
                if failed_on is ep and attempts:
                    pause = backoff_delay(attempts - 1, min_s=self.retry.min_s, max_s=self.retry.max_s,
                                          jitter=self.retry.jitter, rng=self._rng)
                    pause = max(pause, retry_after)  # a throttling node said when to come back
                    if trio.current_time() + pause >= deadline:
                        break  # the retry could not happen in time; fail now, not at the deadline
                    await trio.sleep(pause)
                try:
                    await self.bucket.acquire(encoded.tokens)
                except RateLimited as exc:
                    RPC_REQUESTS.labels(method, ep.label, "rate_limited").inc()
                    self._last_error = str(exc)  # our own quota, not the node's health
                    raise RpcRateLimited(method, str(exc), attempts=attempts) from None
                attempts += 1
                try:
                    payload, text = await self._attempt(ep, encoded, deadline)
                except BreakerOpen as exc:  # a half-open breaker whose one trial is in flight
                    self.bucket.refund(encoded.tokens)  # nothing was sent
                    RPC_REQUESTS.labels(method, ep.label, "breaker_open").inc()
                    last, failed_on = str(exc), ep
                    attempts -= 1
                    refused.add(ep.label)
                    if refused >= {c.label for c in candidates}:
                        self._failed(last)
                        raise RpcUnavailable(method, last, attempts=attempts) from None
                    continue
                except _EndpointFault as exc:
                    last, failed_on = f"{ep.label}: {exc.reason}", ep
                    retry_after = exc.retry_after_s or 0.0
                    log.warning("rpc attempt failed", extra={
                        "event": "rpc_attempt_failed", "method": method, "endpoint": ep.label,
                        "outcome": exc.outcome, "reason": exc.reason, "attempt": attempts})
                    if attempts >= max_attempts:
                        break
                    continue
                self._succeeded()
                return payload, text
        # An attempt cut short by the call's deadline (it ends just before it) is the deadline too.
        if call_scope.cancelled_caught or trio.current_time() >= deadline - 2 * _ATTEMPT_MARGIN_S:
            self._failed(f"deadline of {timeout:g}s passed; last: {last}")
            raise RpcTimeout(method, f"no answer within {timeout:g}s; last: {last}", attempts=attempts)
        self._failed(last)
        raise RpcUnavailable(method, last, attempts=attempts)

    async def _attempt(self, ep: _Endpoint, encoded: _Encoded, deadline: float) -> tuple[Any, str]:
        """One POST to one endpoint under its breaker; `_EndpointFault` when the endpoint failed it."""
        method = encoded.method
        async with ep.breaker.guard():
            started = time.monotonic()
            now = trio.current_time()
            attempt_deadline = min(now + self.attempt_timeout_s, deadline - _ATTEMPT_MARGIN_S)
            outcome = "cancelled"  # until the attempt ends one way or another
            try:
                with trio.move_on_at(attempt_deadline) as scope:  # the attempt's own deadline
                    response = await self._http.post(ep.url, content=encoded.body)
                    text = response.text
                if scope.cancelled_caught:
                    outcome = "timeout"
                    raise _EndpointFault(outcome, f"no answer within {attempt_deadline - now:.3g}s")
                if response.status_code != 200:
                    outcome = "http_error"
                    retry_after = _retry_after(response)
                    raise _EndpointFault(
                        outcome,
                        f"HTTP {response.status_code}"
                        + (f" (retry after {retry_after:g}s)" if retry_after is not None else ""),
                        retry_after,
                    )
                try:
                    payload = json.loads(text)
                except ValueError:
                    outcome = "invalid_response"
                    raise _EndpointFault(outcome, "the answer is not JSON") from None
                if isinstance(payload, dict) and isinstance(payload.get("error"), dict):
                    if payload["error"].get("code") == NODE_UNHEALTHY:
                        outcome = "node_unhealthy"
                        raise _EndpointFault(outcome, "node is unhealthy (-32005)")
                    outcome = "rpc_error"
                else:
                    outcome = "ok"
                return payload, text
            except httpx.TimeoutException as exc:
                outcome = "timeout"
                raise _EndpointFault(outcome, f"{type(exc).__name__}: {scrub(str(exc))}") from None
            except httpx.TransportError as exc:
                outcome = "transport_error"
                raise _EndpointFault(outcome, f"{type(exc).__name__}: {scrub(str(exc))}") from None
            finally:
                elapsed = time.monotonic() - started
                RPC_LATENCY.labels(method, ep.label).observe(elapsed)
                RPC_REQUESTS.labels(method, ep.label, outcome).inc()
                if outcome in ("ok", "rpc_error"):
                    self._last_latency_s = elapsed

    def _succeeded(self) -> None:
        self._last_ok = True

    def _failed(self, reason: str) -> None:
        self._last_ok = False
        self._last_error = reason


def _context(commitment: CommitmentLevel | None) -> RpcContextConfig | None:
    return RpcContextConfig(commitment=commitment) if commitment is not None else None


def _accounts(commitment: CommitmentLevel | None) -> RpcAccountInfoConfig:
    return RpcAccountInfoConfig(encoding=UiAccountEncoding.Base64, commitment=commitment)


def _tx_config(commitment: CommitmentLevel | None = None) -> RpcTransactionConfig:
    # base64: the transaction comes back as wire bytes that solders decodes, legacy or v0.
    return RpcTransactionConfig(encoding=UiTransactionEncoding.Base64, max_supported_transaction_version=0,
                                commitment=commitment)


def confirmed_tx_config() -> RpcTransactionConfig:
    """getTransaction at ``confirmed`` (the default is ``finalized``, ~32 slots later)."""
    return _tx_config(CommitmentLevel.Confirmed)


def _encode_one(request: Body) -> _Encoded:
    raw = request.to_json()
    method = json.loads(raw).get("method", "?")
    return _Encoded(str(method), raw.encode(), 1)


def _encode_batch(requests: Sequence[Body]) -> _Encoded:
    items = []
    for i, request in enumerate(requests):
        item = json.loads(request.to_json())
        item["id"] = i
        items.append(item)
    methods = sorted({str(item.get("method", "?")) for item in items})
    method = methods[0] if len(methods) == 1 else "batch"
    return _Encoded(method, json.dumps(items, separators=(",", ":")).encode(), len(items))


def _batch_answers(method: str, resp_type: type[R], payload: Any, n: int) -> list[R | RpcNodeError]:
    if isinstance(payload, dict) and "error" in payload:
        raise rpc_error_from(payload["error"])  # the whole batch was refused
    if not isinstance(payload, list):
        raise RpcMalformedResponse(method, "a batch must be answered with a JSON array")
    by_id = {item.get("id"): item for item in payload if isinstance(item, dict)}
    out: list[R | RpcNodeError] = []
    for i in range(n):
        item = by_id.get(i)
        if item is None:
            raise RpcMalformedResponse(method, f"no answer for batch element {i}")
        if "error" in item:
            out.append(rpc_error_from(item["error"]))
        else:
            out.append(_parse(method, resp_type, json.dumps(item)))
    return out


def _retry_after(response: httpx.Response) -> float | None:
    """Retry-After in seconds (the HTTP-date form is not used by RPC providers and is ignored)."""
    try:
        value = float(response.headers.get("retry-after", ""))
    except ValueError:
        return None
    return value if 0 <= value < 3600 else None


def _parse(method: str, resp_type: type[R], text: str) -> R:
    try:
        parsed = resp_type.from_json(text)
    except SerdeJSONError as exc:
        raise RpcMalformedResponse(method, str(exc)[:300]) from None
    if not isinstance(parsed, resp_type):
        raise RpcMalformedResponse(method, f"parsed as {type(parsed).__name__}")
    return parsed


# ---------------------------------------------------------------------------------------- messages

@attrs.frozen
class RpcCall(Request[R]):
    """Any solders request; the answer is parsed as `resp_type`: `ask(rpc, RpcCall(GetSlot(),
    GetSlotResp), timeout=...)` returns a `GetSlotResp`. `retry=False` for a request that must not
    be repeated (none of Solana's reads, nor sendTransaction of signed bytes, are such)."""

    request: Body
    resp_type: type[R]
    timeout_s: float | None = None
    retry: bool = True


@attrs.frozen
class RpcBatch(Request[list[Any]]):
    """Solders requests of one kind in batched POSTs (`RpcClient.batch`); an answer, or the node's
    error, per request, in order, each parsed as `resp_type`."""

    requests: tuple[Body, ...]
    resp_type: type[Any]
    timeout_s: float | None = None


@attrs.frozen
class GetLatestBlockhashMsg(Request[GetLatestBlockhashResp]):
    commitment: CommitmentLevel | None = None
    timeout_s: float | None = None


@attrs.frozen
class SendTransactionMsg(Request[Signature]):
    """Signed wire bytes; re-sent as they are on a retry, never re-signed."""

    signed: bytes = attrs.field(repr=lambda b: f"<{len(b)} bytes>")
    skip_preflight: bool = False
    preflight_commitment: CommitmentLevel | None = None
    timeout_s: float | None = None


@attrs.frozen
class GetSignatureStatusesMsg(Request[GetSignatureStatusesResp]):
    signatures: tuple[Signature, ...]
    search_transaction_history: bool = False
    timeout_s: float | None = None


@attrs.frozen
class GetTransactionsMsg(Request[list[GetTransactionResp | RpcNodeError]]):
    """Several getTransaction in one batched POST; per-signature answers in order."""

    signatures: tuple[Signature, ...]
    timeout_s: float | None = None


@attrs.frozen
class GetRpcHealth(Request[RpcHealth]):
    """The client's health record (no network)."""


RpcRequest = (
    RpcCall[Any] | RpcBatch | GetLatestBlockhashMsg | SendTransactionMsg | GetSignatureStatusesMsg
    | GetTransactionsMsg | GetRpcHealth
)


# ---------------------------------------------------------------------------------------- actor


async def _cancel_on(event: trio.Event, scope: trio.CancelScope) -> None:
    await event.wait()
    scope.cancel()


class RpcClientActor(Actor):
    """Serves the messages above with one `RpcClient` per incarnation, many calls at a time."""

    def __init__(
        self,
        make_client: Callable[[], RpcClient],
        *,
        max_in_flight: int = 64,
        probe_interval_s: float = 1.0,
        stop_grace_s: float = 2.0,
    ) -> None:
        if max_in_flight < 1 or probe_interval_s <= 0:
            raise ValueError("max_in_flight must be >= 1 and probe_interval_s > 0")
        self._make_client = make_client
        self._limiter = trio.CapacityLimiter(max_in_flight)
        self._probe_interval_s = probe_interval_s
        self._stop_grace_s = stop_grace_s
        self._client: RpcClient | None = None
        self._in_flight: dict[int, Request[Any]] = {}  # by id(): solders requests are unhashable

    @property
    def client(self) -> RpcClient:
        if self._client is None:
            raise RuntimeError("the RPC client actor has not started")
        return self._client

    def health(self) -> RpcHealth:
        return self.client.health()

    async def run(self, ctx: ChildContext) -> None:
        cause = "cancelled"
        try:
            async with self._make_client() as client, trio.open_nursery() as nursery:
                self._client = client
                probes = trio.CancelScope()
                nursery.start_soon(self._probe, probes)
                ctx.started()
                with trio.CancelScope() as intake:
                    # A stop request ends the intake at once, even while it waits for a free slot.
                    nursery.start_soon(_cancel_on, ctx.stopping, intake)
                    while True:
                        # A message is taken from the mailbox only once a slot is free: what cannot
                        # be served yet stays queued, where a restart does not lose it.
                        slot = object()
                        await self._limiter.acquire_on_behalf_of(slot)
                        msg = await ctx.receive()
                        if msg is None:
                            self._limiter.release_on_behalf_of(slot)
                            break
                        nursery.start_soon(self._serve, msg, slot)
                probes.cancel()
                # In-flight calls get a short grace to finish, then are cancelled (their callers
                # get ActorStopped): a caller's own deadline may be far longer than a shutdown.
                nursery.cancel_scope.deadline = trio.current_time() + self._stop_grace_s
        except BaseException as exc:
            cause = "cancelled" if isinstance(exc, trio.Cancelled) else _cause(exc)
            raise
        finally:
            self._fail_in_flight(ctx, cause)

    def _fail_in_flight(self, ctx: ChildContext, cause: str) -> None:
        for request in self._in_flight.values():
            name = type(request).__name__
            request.reply.fail(
                ActorStopped(ctx.name, name) if ctx.stopping.is_set() else ActorDied(ctx.name, name, cause)
            )
        self._in_flight.clear()

    async def _probe(self, scope: trio.CancelScope) -> None:
        """Heartbeat: the primary's half-open trial when on the backup, else a `getHealth`, so that
        the health record (and `/health`) reflects the node even when no one is calling."""
        with scope:
            while True:
                await trio.sleep(self._probe_interval_s)
                if await self.client.probe_primary():
                    log.info("rpc primary answers again; traffic is back on it",
                             extra={"event": "rpc_failback", "endpoint": "primary"})
                    continue
                try:
                    await self.client.get_health(timeout=self._probe_interval_s)
                except RpcError as exc:  # recorded in the client's health record; nothing to raise
                    log.debug("rpc heartbeat failed", extra={"error": str(exc)})

    async def _serve(self, msg: object, slot: object) -> None:
        try:
            if not isinstance(msg, Request):
                log.warning("rpc client ignored a message it does not know",
                            extra={"message": type(msg).__name__})
                return
            self._in_flight[id(msg)] = msg
            try:
                msg.reply.set(await self._answer(msg))
            except (RpcError, ValueError, TypeError) as exc:
                msg.reply.fail(exc)
            del self._in_flight[id(msg)]
        finally:
            self._limiter.release_on_behalf_of(slot)

    async def _answer(self, msg: Request[Any]) -> Any:
        rpc = self.client
        if isinstance(msg, RpcCall):
            return await rpc.call(msg.request, msg.resp_type, timeout=msg.timeout_s, retry=msg.retry)
        if isinstance(msg, RpcBatch):
            return await rpc.batch(msg.requests, msg.resp_type, timeout=msg.timeout_s)
        if isinstance(msg, SendTransactionMsg):
            return await rpc.send_transaction(
                msg.signed, skip_preflight=msg.skip_preflight,
                preflight_commitment=msg.preflight_commitment, timeout=msg.timeout_s)
        if isinstance(msg, GetLatestBlockhashMsg):
            return await rpc.get_latest_blockhash(msg.commitment, timeout=msg.timeout_s)
        if isinstance(msg, GetSignatureStatusesMsg):
            return await rpc.get_signature_statuses(
                msg.signatures, search_transaction_history=msg.search_transaction_history,
                timeout=msg.timeout_s)
        if isinstance(msg, GetTransactionsMsg):
            return await rpc.get_transactions(msg.signatures, timeout=msg.timeout_s)
        if isinstance(msg, GetRpcHealth):
            return rpc.health()
        raise TypeError(f"the RPC client does not answer {type(msg).__name__}")


def _cause(exc: BaseException) -> str:
    """Why an incarnation ended, for the `ActorDied` of the requests it had in flight."""
    if isinstance(exc, BaseExceptionGroup):
        _, rest = exc.split(trio.Cancelled)
        if rest is None:
            return "cancelled"
        exc = rest
    return describe(exc)


# ---------------------------------------------------------------------------------------- adapter

_T = TypeVar("_T")
_ASK_MARGIN_S: Final = 1.0  # the actor answers by the call's own deadline; the ask waits a bit longer


class DelegatingRpc(SolanaRpc):
    """A `SolanaRpc` that passes everything to ``inner``: subclass it and override the methods you
    change (`actors.shared_rpc.SharedRpc`, the bench's synthetic vaults)."""

    def __init__(self, inner: SolanaRpc) -> None:
        self.inner = inner
        self.default_timeout_s = inner.default_timeout_s

    async def call(
        self, request: Body, resp_type: type[R], *, timeout: float | None = None, retry: bool = True
    ) -> R:
        return await self.inner.call(request, resp_type, timeout=timeout, retry=retry)

    async def batch(
        self, requests: Sequence[Body], resp_type: type[R], *, timeout: float | None = None
    ) -> list[R | RpcNodeError]:
        return await self.inner.batch(requests, resp_type, timeout=timeout)

    async def get_transactions(
        self, signatures: Sequence[Signature], config: RpcTransactionConfig | None = None,
        *, timeout: float | None = None,
    ) -> list[GetTransactionResp | RpcNodeError]:
        return await self.inner.get_transactions(signatures, config, timeout=timeout)


class ActorRpc(SolanaRpc):
    """`SolanaRpc` over the RPC client actor at ``ref``: every call is an ask, so callers share the
    actor's rate limit, breakers and fail-over, and a restart of the actor does not lose a call
    still queued. Errors are the same typed `RpcError`s; an actor that is gone or does not answer
    in time is `RpcUnavailable`."""

    def __init__(self, ref: ActorRef, *, default_timeout_s: float = 5.0) -> None:
        self.ref = ref
        self.default_timeout_s = default_timeout_s

    async def _ask(self, request: Request[_T], timeout: float) -> _T:
        try:
            return await ask(self.ref, request, timeout=timeout + _ASK_MARGIN_S)
        except (AskError, ActorNotFound) as exc:
            raise RpcUnavailable(type(request).__name__, f"rpc client actor: {exc}") from exc

    async def call(
        self, request: Body, resp_type: type[R], *, timeout: float | None = None, retry: bool = True
    ) -> R:
        t = self.default_timeout_s if timeout is None else timeout
        return await self._ask(RpcCall(request, resp_type, timeout_s=t, retry=retry), t)

    async def batch(
        self, requests: Sequence[Body], resp_type: type[R], *, timeout: float | None = None
    ) -> list[R | RpcNodeError]:
        t = self.default_timeout_s if timeout is None else timeout
        return await self._ask(RpcBatch(tuple(requests), resp_type, timeout_s=t), t)

    async def get_transactions(
        self, signatures: Sequence[Signature], config: RpcTransactionConfig | None = None,
        *, timeout: float | None = None,
    ) -> list[GetTransactionResp | RpcNodeError]:
        if config is not None:
            raise ValueError("ActorRpc.get_transactions uses the actor's transaction config")
        t = self.default_timeout_s if timeout is None else timeout
        return await self._ask(GetTransactionsMsg(tuple(signatures), t), t)
