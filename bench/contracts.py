"""Contracts benchmark: compute units per vault deposit, per AMM swap and per bot_trade (measured
in LiteSVM on the real, loader-deployed programs), and the programs' sizes.

Figures: `deposit_cu`, `amm_swap_cu`, `bot_trade_cu` (median of several runs; CU is deterministic
for the same path), `vault_so_bytes`, `amm_so_bytes`.
"""

from __future__ import annotations

import statistics

from bench.report import Figure
from contracts.build import ensure_built
from contracts.testbed import Testbed

RUNS = 5


def figures() -> dict[str, Figure]:
    programs = ensure_built()
    bed = Testbed.create(programs)
    owner, user_usdc = bed.new_owner(500_000_000)
    sol = bed.create_mint(9)
    bed.create_pool(bed.usdc, sol, 10_000_000_000, 50_000_000_000)
    bot = bed.funded_keypair()
    bed.send([bed.vault.grant_bot_authority(owner.pubkey(), bot.pubkey())], [owner])
    vault = bed.vault.vault(owner.pubkey())
    vin = bed.vault.vault_token_account(owner.pubkey(), bed.usdc)
    vout = bed.token_account(vault, sol)
    trader = bed.funded_keypair()
    t_usdc, t_sol = bed.token_account(trader.pubkey(), bed.usdc), bed.token_account(trader.pubkey(), sol)
    bed.mint_to(bed.usdc, t_usdc, 10**9)

    deposit, swap, trade = [], [], []
    for _ in range(RUNS):
        meta = bed.send([bed.vault.deposit(owner.pubkey(), user_usdc, bed.usdc, 10_000_000)], [owner])
        deposit.append(meta.compute_units_consumed())
        meta = bed.send([bed.amm.swap(trader.pubkey(), bed.usdc, sol, t_usdc, t_sol, 1_000_000, 1)], [trader])
        swap.append(meta.compute_units_consumed())
        route = bed.amm.swap_accounts(vault, bed.usdc, sol, vin, vout)
        meta = bed.send(
            [
                bed.vault.bot_trade(
                    owner.pubkey(),
                    bot.pubkey(),
                    bed.usdc,
                    sol,
                    bed.amm.program_id,
                    1_000_000,
                    1,
                    bed.amm.swap_data(1_000_000, 1),
                    route,
                )
            ],
            [bot],
        )
        trade.append(meta.compute_units_consumed())

    return {
        "bot_trade_cu": Figure(statistics.median(trade), "CU", better="lower", target=200_000),
        "amm_swap_cu": Figure(statistics.median(swap), "CU", better="lower"),
        "deposit_cu": Figure(statistics.median(deposit), "CU", better="lower"),
        "vault_so_bytes": Figure(programs["vault"].stat().st_size, "bytes", better="lower"),
        "amm_so_bytes": Figure(programs["amm"].stat().st_size, "bytes", better="lower"),
    }
