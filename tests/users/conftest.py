"""What the user tests share: a real embedded PostgreSQL with every migration (`schema`), the real
local market chain (`market_node`, `desk`, `rpc` from tests/trades/conftest.py: the manifest's demo
vaults are initialised, funded and grant the manifest's bot), a `Chain` helper that puts vaults in
every state the enable check must refuse (signed by fresh owners funded with ``requestAirdrop``),
and `ChainEnabler`: the node's side of enable/disable with the REAL vault check -- only "start the
executor" is a recorded set here, because the executor is not this issue's part.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs
import pytest
import trio
from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.message import Message
from solders.pubkey import Pubkey
from solders.rpc.requests import RequestAirdrop
from solders.rpc.responses import RequestAirdropResp
from solders.signature import Signature
from solders.transaction import Transaction

from actors.rpc_client import RpcClient, SolanaRpc
from actors.user_store import UserSettings, UserStore
from actors.vault_check import VaultCheck, check_vault
from contracts.vault_client import VaultClient
from engine.postgres_gateway import PostgresGateway
from tests.infra.conftest import db_url, gateway, pg_server, schema, xorj_home  # noqa: F401
from tests.ops.conftest import sock_dir  # noqa: F401
from tests.trades.conftest import Desk, desk, market_node, rpc  # noqa: F401

LAMPORTS_PER_SOL = 10**9


@pytest.fixture
async def store(schema: PostgresGateway) -> UserStore:  # noqa: F811
    return UserStore(schema, timeout_s=10.0)


@attrs.define
class ChainEnabler:
    """The node's `UserEnabler` with the real vault check; `running` stands in for the executors."""

    rpc: SolanaRpc
    vault: VaultClient
    bot: Pubkey
    running: set[str] = attrs.field(factory=set)
    enable_calls: list[str] = attrs.field(factory=list)
    disable_calls: list[str] = attrs.field(factory=list)

    async def enable(self, user: UserSettings) -> VaultCheck:
        self.enable_calls.append(user.owner)
        check = await check_vault(self.rpc, self.vault, Pubkey.from_string(user.owner), self.bot, timeout=5.0)
        if check.ok:
            self.running.add(user.owner)
        return check

    async def disable(self, user: UserSettings) -> None:
        self.disable_calls.append(user.owner)
        self.running.discard(user.owner)


@pytest.fixture
def enabler(desk: Desk, rpc: RpcClient) -> ChainEnabler:  # noqa: F811
    return ChainEnabler(rpc, desk.vault, desk.bot.pubkey())


@attrs.frozen
class Chain:
    """Signed transactions on the local chain, each waited on until confirmed."""

    rpc: RpcClient
    vault: VaultClient

    async def airdrop(self, to: Pubkey, sol: int = 2) -> None:
        request = RequestAirdrop(to, sol * LAMPORTS_PER_SOL)
        answer = await self.rpc.call(request, RequestAirdropResp, timeout=5.0)
        await self.confirmed(answer.value)

    async def send(self, payer: Keypair, instructions: Sequence[Instruction]) -> None:
        blockhash = (await self.rpc.get_latest_blockhash(timeout=5.0)).value.blockhash
        tx = Transaction([payer], Message(list(instructions), payer.pubkey()), blockhash)
        await self.confirmed(await self.rpc.send_transaction(bytes(tx), timeout=5.0))

    async def confirmed(self, signature: Signature) -> None:
        with trio.fail_after(20):
            while True:
                status = (await self.rpc.get_signature_statuses([signature], timeout=5.0)).value[0]
                if status is not None and status.confirmation_status is not None \
                        and int(status.confirmation_status) >= 1:
                    assert status.err is None, status.err
                    return
                await trio.sleep(0.02)  # the chain's clock: no event to wait on

    async def funded_owner(self) -> Keypair:
        owner = Keypair()
        await self.airdrop(owner.pubkey())
        return owner

    async def vault_of(self, *, bot: Pubkey | None, deactivate: bool = False) -> Keypair:
        """A fresh owner with an initialised vault granting ``bot`` (none if None), maybe deactivated."""
        owner = await self.funded_owner()
        instructions = [self.vault.initialize_vault(owner.pubkey())]
        if bot is not None:
            instructions.append(self.vault.grant_bot_authority(owner.pubkey(), bot))
        if deactivate:
            instructions.append(self.vault.deactivate_vault(owner.pubkey()))
        await self.send(owner, instructions)
        return owner


@pytest.fixture
def chain(desk: Desk, rpc: RpcClient) -> Chain:  # noqa: F811
    return Chain(rpc, desk.vault)
