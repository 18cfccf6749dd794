"""The seeded market genesis: reproducible by seed, programs deployed and configured, pools
funded, demo users' vaults ready for the bot, keypairs in 0600 files and never in the manifest,
and a bot_trade signed by the bot key through the RPC lands through the AMM."""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path
from typing import Any

import httpx
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed
from solders.pubkey import Pubkey

from contracts.amm_client import AmmClient
from contracts.vault_client import VaultClient, decode_config, decode_vault, trade_events
from localnet.chain import Chain, ChainConfig, Commitment
from localnet.market import Market, build_market, market_keys
from tests.localnet.conftest import MARKET_SEED, LocalnetNode
from tests.localnet.kit import blockhash, confirmed, signed
from tests.localnet.market_kit import manifest_keypair

BOT_TRADE_USDC = 20 * 10**6


def in_process_market(seed: int) -> tuple[Chain, Market]:
    """The same genesis as the market node's, without a node (100 ms slots, as MARKET_CHAIN)."""
    keys = market_keys(seed)
    chain = Chain(ChainConfig(slot_ms=100, seed=seed), faucet=keys.faucet, mint_authority=keys.mint_authority)
    return chain, build_market(chain, seed)


def addresses(market: Market) -> dict[str, object]:
    return {
        "programs": (str(market.vault_program), str(market.amm_program)),
        "mints": {p.symbol: str(p.mint) for p in market.pools} | {"USDC": str(market.usdc.mint)},
        "pools": {p.symbol: (str(p.pool), str(p.token_account), str(p.usdc_account)) for p in market.pools},
        "bot": str(market.bot.pubkey()),
        "users": [(str(u.owner.pubkey()), str(u.vault)) for u in market.demo_users],
        "traders": {t.name: str(t.keypair.pubkey()) for t in market.traders},
    }


def signatures(chain: Chain, wallet: str) -> list[str]:
    found = chain.signatures_for_address(
        Pubkey.from_string(wallet), before=None, until=None, limit=10**6, commitment=Commitment.PROCESSED
    )
    return [str(record.signature) for record in found]


def test_the_same_seed_gives_the_same_market_and_histories_and_another_seed_another(
    market_node: LocalnetNode,
) -> None:
    manifest: dict[str, Any] = market_node.manifest
    chain, market = in_process_market(MARKET_SEED)
    mine = addresses(market)
    assert mine["programs"] == (manifest["programs"]["vault"], manifest["programs"]["amm"])
    assert mine["mints"] == {symbol: m["mint"] for symbol, m in manifest["mints"].items() if symbol != "USDT"}
    assert mine["bot"] == manifest["botAuthority"]["pubkey"]
    assert mine["users"] == [(u["owner"], u["vault"]) for u in manifest["demoUsers"]]
    assert mine["traders"] == {t["name"]: t["pubkey"] for t in manifest["traders"]}
    for trader in manifest["traders"][:6]:
        over_rpc = [
            s["signature"]
            for s in market_node.result("getSignaturesForAddress", [trader["pubkey"], {"limit": 1000}])
        ]
        # a signature signs the message, amounts included: same signatures, same swaps
        assert signatures(chain, trader["pubkey"]) == over_rpc, trader["name"]
    professional = next(t["pubkey"] for t in manifest["traders"] if t["name"] == "professional")
    newest = chain.signatures_for_address(
        Pubkey.from_string(professional), before=None, until=None, limit=1, commitment=Commitment.PROCESSED
    )[0]
    answer = market_node.result(
        "getTransaction", [str(newest.signature), {"encoding": "json", "commitment": "confirmed"}]
    )
    assert [b["uiTokenAmount"]["amount"] for b in answer["meta"]["postTokenBalances"]] == [
        str(b.amount) for b in newest.post_token_balances
    ]
    assert answer["blockTime"] < manifest["genesisTime"]

    other_chain, other = in_process_market(MARKET_SEED + 1)
    theirs = addresses(other)
    for key in ("programs", "mints", "pools", "bot", "users", "traders"):
        assert theirs[key] != mine[key], key
    assert signatures(other_chain, str(other.traders[0].keypair.pubkey())) != signatures(
        chain, str(market.traders[0].keypair.pubkey())
    )


def test_programs_are_deployed_upgradeable_and_the_vault_is_configured(market_node: LocalnetNode) -> None:
    manifest: dict[str, Any] = market_node.manifest
    for name in ("vault", "amm"):
        info = market_node.result("getAccountInfo", [manifest["programs"][name], {"encoding": "base64"}])[
            "value"
        ]
        assert info["executable"] and info["owner"] == "BPFLoaderUpgradeab1e11111111111111111111111"
    config = market_node.result(
        "getAccountInfo", [manifest["programs"]["vaultConfig"], {"encoding": "base64"}]
    )
    decoded = decode_config(_data(config))
    assert str(decoded.admin) == manifest["programs"]["upgradeAuthority"]
    assert str(decoded.usdc_mint) == manifest["mints"]["USDC"]["mint"]
    assert [str(p) for p in decoded.swap_programs] == [manifest["programs"]["amm"]]
    for symbol in ("JUP", "WIF", "RAY", "BONK"):
        pool = manifest["pools"][symbol]
        usdc = market_node.result("getTokenAccountBalance", [pool["usdcAccount"]])["value"]
        assert float(usdc["uiAmount"]) > 1_000_000, symbol


def _data(answer: dict[str, Any]) -> bytes:
    return base64.b64decode(answer["value"]["data"][0])


def test_manifest_holds_no_secret_and_keypair_files_are_private(market_node: LocalnetNode) -> None:
    manifest: dict[str, Any] = market_node.manifest
    files = [manifest["botAuthority"]["keypairFile"], *(u["keypairFile"] for u in manifest["demoUsers"])]
    text = json.dumps(manifest)
    for path in files:
        assert stat.S_IMODE(Path(path).stat().st_mode) == 0o600
        keypair = manifest_keypair(path)
        assert str(keypair) not in text and json.dumps(list(bytes(keypair))) not in text
    assert str(manifest_keypair(files[0]).pubkey()) == manifest["botAuthority"]["pubkey"]


def test_demo_vaults_hold_their_deposit_and_the_bot_trades_through_the_amm(market_node: LocalnetNode) -> None:
    manifest: dict[str, Any] = market_node.manifest
    vault_program = VaultClient(Pubkey.from_string(manifest["programs"]["vault"]))
    amm = AmmClient(Pubkey.from_string(manifest["programs"]["amm"]))
    usdc = Pubkey.from_string(manifest["mints"]["USDC"]["mint"])
    jup = Pubkey.from_string(manifest["mints"]["JUP"]["mint"])
    bot = manifest_keypair(manifest["botAuthority"]["keypairFile"])
    for user in manifest["demoUsers"]:
        state = decode_vault(
            _data(market_node.result("getAccountInfo", [user["vault"], {"encoding": "base64"}]))
        )
        assert state.is_active and str(state.bot_authority) == str(bot.pubkey())
        assert state.total_deposited == user["deposit"] == 500 * 10**6
        balance = market_node.result("getTokenAccountBalance", [user["vaultUsdcAccount"]])["value"]
        assert int(balance["amount"]) == user["deposit"]

    user = manifest["demoUsers"][-1]  # the last one is left to this test
    owner = Pubkey.from_string(user["owner"])
    quote = httpx.get(
        manifest["priceUrl"] + "/swap/v1/quote",
        params={
            "inputMint": str(usdc),
            "outputMint": str(jup),
            "amount": str(BOT_TRADE_USDC),
            "slippageBps": "100",
        },
        timeout=10.0,
    ).json()
    minimum = int(quote["otherAmountThreshold"])
    vault = vault_program.vault(owner)
    source, destination = (
        vault_program.vault_token_account(owner, usdc),
        vault_program.vault_token_account(owner, jup),
    )
    ix = vault_program.bot_trade(
        owner,
        bot.pubkey(),
        usdc,
        jup,
        amm.program_id,
        BOT_TRADE_USDC,
        minimum,
        amm.swap_data(BOT_TRADE_USDC, minimum),
        amm.swap_accounts(vault, usdc, jup, source, destination),
    )

    async def scenario(client: AsyncClient) -> list[str]:
        signature = (await client.send_transaction(signed(bot, [ix], await blockhash(client)))).value
        await confirmed(client, signature)
        answer = await client.get_transaction(signature, encoding="json", commitment=Confirmed)
        assert answer.value is not None and answer.value.transaction.meta is not None
        assert answer.value.transaction.meta.err is None
        return list(answer.value.transaction.meta.log_messages or [])

    events = trade_events(market_node.run(scenario))
    assert len(events) == 1
    event = events[0]
    assert (event.vault, event.bot_authority, event.input_mint, event.output_mint) == (
        vault,
        bot.pubkey(),
        usdc,
        jup,
    )
    assert event.amount_in == BOT_TRADE_USDC and event.amount_out >= minimum
