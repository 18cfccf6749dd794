"""``actors.swap_extraction.extract_swap`` on real transactions of the market node, read back
through getTransaction: an AMM swap either way is a Swap, a failed swap is FAILED, a plain SPL
transfer is ONE_SIDED, and one transaction swapping into two tokens is MULTI_TOKEN."""

from __future__ import annotations

from typing import Any

from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed
from solana.rpc.models import TxOpts
from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.transaction_status import EncodedConfirmedTransactionWithStatusMeta
from spl.token.instructions import (
    create_idempotent_associated_token_account,
    get_associated_token_address,
    transfer_checked,
)
from spl.token.models import TransferCheckedParams

from actors.swap_extraction import Skip, Swap, extract_swap
from contracts.amm_client import AmmClient
from tests.localnet.conftest import LocalnetNode
from tests.localnet.kit import blockhash, confirmed, funded, signed

TOKEN_PROGRAM = Pubkey.from_string("TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA")


async def land(
    client: AsyncClient, payer: Keypair, ixs: list[Instruction]
) -> tuple[Signature, EncodedConfirmedTransactionWithStatusMeta]:
    tx = signed(payer, ixs, await blockhash(client))
    signature = (await client.send_transaction(tx, opts=TxOpts(skip_preflight=True))).value
    await confirmed(client, signature)
    answer = await client.get_transaction(
        signature, encoding="json", commitment=Confirmed, max_supported_transaction_version=0
    )
    assert answer.value is not None
    return signature, answer.value


def test_real_transactions_are_classified_as_the_scorer_needs(market_node: LocalnetNode) -> None:
    manifest: dict[str, Any] = market_node.manifest
    mint = {symbol: Pubkey.from_string(m["mint"]) for symbol, m in manifest["mints"].items()}
    amm = AmmClient(Pubkey.from_string(manifest["programs"]["amm"]))
    usdc, jup, wif = mint["USDC"], mint["JUP"], mint["WIF"]

    async def scenario(client: AsyncClient) -> dict[str, Swap | Skip]:
        wallet = await funded(client)
        me = wallet.pubkey()
        market_node.result("localnet_mint", [str(me), str(usdc), 1_000 * 10**6])
        account = {m: get_associated_token_address(me, m) for m in (usdc, jup, wif)}
        await land(
            client, wallet, [create_idempotent_associated_token_account(me, me, m) for m in (jup, wif)]
        )

        def swap(sell: Pubkey, buy: Pubkey, amount: int, minimum: int = 1) -> Instruction:
            return amm.swap(me, sell, buy, account[sell], account[buy], amount, minimum)

        out: dict[str, Swap | Skip] = {}
        signature, tx = await land(client, wallet, [swap(usdc, jup, 10 * 10**6)])
        bought = extract_swap(me, signature, tx)
        out["buy"] = bought
        assert isinstance(bought, Swap)
        signature, tx = await land(client, wallet, [swap(jup, usdc, bought.bought_amount)])
        out["sell"] = extract_swap(me, signature, tx)
        signature, tx = await land(client, wallet, [swap(usdc, jup, 10 * 10**6, minimum=2**63)])
        out["slippage"] = extract_swap(me, signature, tx)
        friend = Keypair().pubkey()
        signature, tx = await land(
            client,
            wallet,
            [
                create_idempotent_associated_token_account(me, friend, usdc),
                transfer_checked(
                    TransferCheckedParams(
                        program_id=TOKEN_PROGRAM,
                        source=account[usdc],
                        mint=usdc,
                        dest=get_associated_token_address(friend, usdc),
                        owner=me,
                        amount=5 * 10**6,
                        decimals=6,
                    )
                ),
            ],
        )
        out["transfer"] = extract_swap(me, signature, tx)
        signature, tx = await land(client, wallet, [swap(usdc, jup, 10**6), swap(usdc, wif, 10**6)])
        out["two_tokens"] = extract_swap(me, signature, tx)
        return out

    got = market_node.run(scenario)
    buy, sell = got["buy"], got["sell"]
    assert isinstance(buy, Swap) and isinstance(sell, Swap)
    assert (buy.sold_mint, buy.sold_amount, buy.bought_mint) == (str(usdc), 10 * 10**6, str(jup))
    assert buy.bought_amount > 0 and buy.block_time is not None and buy.fee_lamports > 0
    assert (sell.sold_mint, sell.sold_amount, sell.bought_mint) == (str(jup), buy.bought_amount, str(usdc))
    assert 0 < sell.bought_amount < 10 * 10**6  # two AMM fees: a round trip at an unmoved price loses
    assert got["slippage"] is Skip.FAILED
    assert got["transfer"] is Skip.ONE_SIDED
    assert got["two_tokens"] is Skip.MULTI_TOKEN
