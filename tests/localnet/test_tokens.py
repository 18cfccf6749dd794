"""SPL tokens on the local chain: admin mints, balances, owner queries, and token balances in meta."""

from __future__ import annotations

import json

import pytest
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed
from solana.rpc.models import TokenAccountOpts
from solders.account_decoder import ParsedAccount
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from solders.rpc.responses import GetAccountInfoMaybeJsonParsedResp
from solders.signature import Signature
from spl.token.instructions import (
    create_idempotent_associated_token_account,
    get_associated_token_address,
    transfer_checked,
)
from spl.token.models import TransferCheckedParams

from tests.localnet.conftest import LocalnetNode
from tests.localnet.kit import blockhash, confirmed, funded, signed

TOKEN_PROGRAM_ID = Pubkey.from_string("TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA")


def test_genesis_creates_usdc_and_other_tokens_with_their_decimals(admin_node: LocalnetNode) -> None:
    mints = admin_node.manifest["mints"]
    assert mints["USDC"]["decimals"] == 6 and mints["BONK"]["decimals"] == 5
    assert set(mints) >= {"USDC", "JUP", "BONK", "WIF", "RAY"}
    assert admin_node.result("localnet_getMints") == mints
    parsed = admin_node.rpc("getAccountInfo", [mints["USDC"]["mint"], {"encoding": "jsonParsed"}])
    info = parsed["result"]["value"]["data"]["parsed"]["info"]
    assert info["decimals"] == 6 and info["mintAuthority"] == admin_node.manifest["mintAuthority"]["pubkey"]
    assert GetAccountInfoMaybeJsonParsedResp.from_json(json.dumps(parsed)).value is not None
    assert "secret" not in json.dumps(admin_node.manifest).lower()


def test_admin_mint_then_a_token_transfer_shows_balances_and_token_balances(no_faults: LocalnetNode) -> None:
    usdc = Pubkey.from_string(no_faults.manifest["mints"]["USDC"]["mint"])

    async def scenario(client: AsyncClient) -> None:
        alice = await funded(client, sol=1)
        bob = Keypair()
        minted = no_faults.result("localnet_mint", [str(alice.pubkey()), str(usdc), 25_000_000])
        alice_ata = get_associated_token_address(alice.pubkey(), usdc)
        balance = (await client.get_token_account_balance(alice_ata)).value
        assert (balance.amount, balance.decimals, balance.ui_amount_string) == ("25000000", 6, "25")
        await confirmed(client, Signature.from_string(minted))
        mint_history = (await client.get_signatures_for_address(alice_ata, commitment=Confirmed)).value
        assert [str(entry.signature) for entry in mint_history] == [minted]  # a real transaction

        by_mint = (
            await client.get_token_accounts_by_owner(alice.pubkey(), TokenAccountOpts(mint=usdc))
        ).value
        assert [entry.pubkey for entry in by_mint] == [alice_ata]
        by_program = (
            await client.get_token_accounts_by_owner_json_parsed(
                alice.pubkey(), TokenAccountOpts(program_id=TOKEN_PROGRAM_ID)
            )
        ).value
        assert len(by_program) == 1
        data = by_program[0].account.data
        assert isinstance(data, ParsedAccount) and data.program == "spl-token"
        assert data.parsed["info"]["tokenAmount"]["uiAmountString"] == "25"

        bob_ata = get_associated_token_address(bob.pubkey(), usdc)
        tx = signed(
            alice,
            [
                create_idempotent_associated_token_account(alice.pubkey(), bob.pubkey(), usdc),
                transfer_checked(
                    TransferCheckedParams(
                        program_id=TOKEN_PROGRAM_ID,
                        source=alice_ata,
                        mint=usdc,
                        dest=bob_ata,
                        owner=alice.pubkey(),
                        amount=7_500_000,
                        decimals=6,
                    )
                ),
            ],
            await blockhash(client),
        )
        signature = (await client.send_transaction(tx)).value
        await confirmed(client, signature)
        got = (await client.get_transaction(signature, "json", Confirmed, 0)).value
        assert got is not None and got.transaction.meta is not None
        meta = got.transaction.meta
        keys = list(tx.message.account_keys)
        pre = {
            keys[b.account_index]: (b.owner, b.ui_token_amount.amount) for b in meta.pre_token_balances or []
        }
        post = {
            keys[b.account_index]: (b.owner, b.ui_token_amount.amount) for b in meta.post_token_balances or []
        }
        assert pre == {alice_ata: (alice.pubkey(), "25000000")}
        assert post == {alice_ata: (alice.pubkey(), "17500000"), bob_ata: (bob.pubkey(), "7500000")}
        assert all(
            b.mint == usdc and b.program_id == TOKEN_PROGRAM_ID for b in meta.post_token_balances or []
        )
        assert (await client.get_token_account_balance(bob_ata)).value.ui_amount_string == "7.5"

        parsed = (await client.get_transaction(signature, "jsonParsed", Confirmed, 0)).value
        assert parsed is not None
        instructions = parsed.transaction.transaction.message.instructions  # type: ignore[union-attr]
        assert instructions[0].program == "spl-associated-token-account"  # type: ignore[union-attr]
        assert instructions[1].parsed["type"] == "transferChecked"  # type: ignore[union-attr]
        assert instructions[1].parsed["info"]["tokenAmount"]["amount"] == "7500000"  # type: ignore[union-attr]
        inner = parsed.transaction.meta.inner_instructions  # type: ignore[union-attr]
        assert inner and inner[0].index == 0  # the ATA program's CPIs into system and token

    no_faults.run(scenario)


def test_create_mint_makes_a_new_token_and_refuses_a_duplicate_symbol(no_faults: LocalnetNode) -> None:
    mint = no_faults.result("localnet_createMint", ["XORJTEST", 9])
    account = no_faults.result("getAccountInfo", [mint, {"encoding": "jsonParsed"}])["value"]
    assert account["data"]["parsed"]["info"]["decimals"] == 9
    duplicate = no_faults.rpc("localnet_createMint", ["XORJTEST", 9])
    assert duplicate["error"]["code"] == -32602
    foreign = no_faults.rpc("localnet_mint", [str(Keypair().pubkey()), str(Keypair().pubkey()), 1])
    assert foreign["error"]["code"] == -32602


@pytest.mark.parametrize("address", ["not-a-key", 42])
def test_token_queries_refuse_bad_addresses_with_invalid_params(
    admin_node: LocalnetNode, address: object
) -> None:
    assert admin_node.rpc("getTokenAccountBalance", [address])["error"]["code"] == -32602
