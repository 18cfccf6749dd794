"""What the trade lifecycle tests share: a real embedded PostgreSQL with every migration (the infra
fixtures), one real ``python -m localnet --genesis market`` node for the session (fast slots, a
40-slot blockhash window: a blockhash expires in ~2 s), the manifest's demo vault and bot key,
and the local AMM's route for a USDC -> JUP bot_trade.

The chain is shared by the tests, so a test that sets faults resets them (`faults` fixture), and
every assertion about the chain is about this test's own signatures or balance deltas.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from decimal import Decimal
from typing import Any

import attrs
import httpx
import pytest
import trio
from solders.commitment_config import CommitmentLevel
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from solders.rpc.config import RpcSignaturesForAddressConfig
from solders.signature import Signature

from actors.rpc_client import RetryPolicy, RpcClient, confirmed_tx_config
from actors.trade_execution import ExecutionSettings, Route
from actors.trade_lifecycle import intent_id
from actors.trade_store import NewTrade, TradeStore
from contracts.amm_client import AmmClient, decode_pool, quote
from contracts.vault_client import TradeExecuted, VaultClient, trade_events
from engine.postgres_gateway import PostgresGateway
from tests.infra.conftest import db_url, gateway, pg_server, schema, xorj_home  # noqa: F401
from tests.localnet.conftest import LocalnetNode, start_node, stop_node
from tests.localnet.market_kit import manifest_keypair

MARKET = ("--slot-ms", "50", "--blockhash-window", "40", "--finalize-slots", "4", "--confirm-slots", "1",
          "--genesis", "market", "--price-port", "0", "--admin", "--seed", "11")
TRADE_USDC = 2 * 10**6  # 2 USDC per trade: the demo vault holds 500


@pytest.fixture(scope="session")
def market_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalnetNode]:
    node = start_node(tmp_path_factory.mktemp("trades-market"), *MARKET, deadline_s=120.0)
    yield node
    assert stop_node(node) == 0



async def executed(rpc: RpcClient, signature: str) -> list[TradeExecuted]:
    """The `TradeExecuted` events of a transaction the chain confirmed."""
    answer = (await rpc.get_transaction(Signature.from_string(signature), confirmed_tx_config(),
                                        timeout=5.0)).value
    assert answer is not None and answer.transaction.meta is not None, signature
    return trade_events(answer.transaction.meta.log_messages or [])


async def set_faults(url: str, knobs: Mapping[str, object]) -> None:
    """Set the local chain's fault knobs (``localnet_setFaults``) at ``url``."""
    async with httpx.AsyncClient() as http:
        with trio.fail_after(10):
            answer = (await http.post(url, json={
                "jsonrpc": "2.0", "id": 1, "method": "localnet_setFaults", "params": [dict(knobs)]})).json()
    assert "error" not in answer, answer


@attrs.frozen
class Desk:
    """The manifest's market as the executor sees it: programs, bot key, one demo vault."""

    node: LocalnetNode
    vault: VaultClient
    amm: AmmClient
    bot: Keypair
    owner: Pubkey
    usdc: Pubkey
    jup: Pubkey

    @property
    def settings(self) -> ExecutionSettings:
        return ExecutionSettings(
            programs={str(self.vault.program_id): "vault", str(self.amm.program_id): "amm"},
            rpc_timeout_s=5.0, settle_within_s=30.0, poll_s=0.05, resend_every_s=0.5)

    def route(self, amount_in: int, amm_minimum: int = 0) -> Route:
        """The local AMM's swap leg for USDC -> JUP from the vault's token accounts."""
        vault = self.vault.vault(self.owner)
        accounts = self.amm.swap_accounts(
            vault, self.usdc, self.jup, self.vault.vault_token_account(self.owner, self.usdc),
            self.vault.vault_token_account(self.owner, self.jup))
        return Route(self.amm.program_id, self.amm.swap_data(amount_in, amm_minimum), tuple(accounts))

    async def quote(self, rpc: RpcClient, amount_in: int) -> int:
        """What the pool gives for ``amount_in`` USDC now (the AMM's own math over its reserves)."""
        pool = self.amm.pool(self.usdc, self.jup)
        state = decode_pool(bytes((await rpc.get_account_info(pool, timeout=5.0)).value.data))  # type: ignore[union-attr]
        reserves = {}
        for mint in (self.usdc, self.jup):
            account = self.amm.pool_token_account(self.usdc, self.jup, mint)
            balance = await rpc.get_token_account_balance(account, timeout=5.0)
            reserves[mint] = int(balance.value.amount)
        return quote(amount_in, reserves[self.usdc], reserves[self.jup], state.fee_bps)

    async def jup_balance(self, rpc: RpcClient) -> int:
        account = self.vault.vault_token_account(self.owner, self.jup)
        return int((await rpc.get_token_account_balance(account, timeout=5.0)).value.amount)

    async def vault_signatures(self, rpc: RpcClient) -> list[tuple[str, bool]]:
        """(signature, succeeded) of every transaction touching the vault PDA, newest first."""
        answer = await rpc.get_signatures_for_address(
            self.vault.vault(self.owner),
            RpcSignaturesForAddressConfig(limit=1000, commitment=CommitmentLevel.Confirmed), timeout=5.0)
        return [(str(s.signature), s.err is None) for s in answer.value]

    async def executed(self, rpc: RpcClient, signature: str) -> list[TradeExecuted]:
        return await executed(rpc, signature)

    async def set_faults(self, **knobs: Any) -> None:
        await set_faults(self.node.url, knobs)

    async def wait_for_height(self, rpc: RpcClient, height: int, *, within: float = 20.0) -> None:
        with trio.fail_after(within):
            while await rpc.get_block_height(timeout=5.0) <= height:  # noqa: ASYNC110 -- the chain's clock
                await trio.sleep(0.05)


@pytest.fixture(scope="session")
def desk(market_node: LocalnetNode) -> Desk:
    manifest = market_node.manifest
    user = manifest["demoUsers"][0]
    return Desk(
        node=market_node,
        vault=VaultClient(Pubkey.from_string(manifest["programs"]["vault"])),
        amm=AmmClient(Pubkey.from_string(manifest["programs"]["amm"])),
        bot=manifest_keypair(manifest["botAuthority"]["keypairFile"]),
        owner=Pubkey.from_string(user["owner"]),
        usdc=Pubkey.from_string(manifest["mints"]["USDC"]["mint"]),
        jup=Pubkey.from_string(manifest["mints"]["JUP"]["mint"]),
    )


@pytest.fixture
async def rpc(desk: Desk) -> AsyncIterator[RpcClient]:
    async with RpcClient(desk.node.url, rate_per_s=5000.0, burst=500, default_timeout_s=5.0,
                         retry=RetryPolicy(retries=1, min_s=0.01, max_s=0.05)) as client:
        yield client


@pytest.fixture
async def faults(desk: Desk) -> AsyncIterator[Desk]:
    """The desk, with the chain's faults reset after the test whatever happened."""
    yield desk
    await desk.set_faults(dropRate=0.0, landDelaySlots=0, errorAfterLanding=False)


@pytest.fixture
async def store(schema: PostgresGateway) -> TradeStore:  # noqa: F811
    await schema.execute("INSERT INTO users (id, wallet_address) VALUES ('user-1', 'wallet-1')", timeout=10)
    return TradeStore(schema, timeout_s=10.0)


def new_trade(desk: Desk, *, minimum_amount_out: int = 0, amount_in: int = TRADE_USDC) -> NewTrade:
    """A fresh intent of user-1: ``amount_in`` USDC -> JUP from the demo vault."""
    return NewTrade(
        user_id="user-1", intent_id=intent_id("user-1", f"job-{uuid.uuid4().hex[:8]}", 0),
        from_token=str(desk.usdc), to_token=str(desk.jup), amount=Decimal(amount_in) / 10**6,
        amount_in=amount_in, minimum_amount_out=minimum_amount_out)
