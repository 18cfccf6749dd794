"""Fuzzing the instruction data of both programs (random bytes and mutated valid borsh, seeded and
bounded): the programs must only ever fail cleanly -- an error code, never a VM fault -- and a
failed instruction changes nothing."""

from __future__ import annotations

import random

from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.message import Message
from solders.transaction import VersionedTransaction
from solders.transaction_metadata import FailedTransactionMetadata
from solders.transaction_status import InstructionErrorCustom, TransactionErrorInstructionError

from contracts.definitions import AMM, VAULT
from contracts.testbed import Testbed
from tests.contracts.scenarios import trading_vault

CASES = 250
# Built-in errors a program may return on purpose (InvalidInstructionData, NotEnoughAccountKeys) or that
# the runtime reports for a refused CPI; a VM fault would show up as ProgramFailedToComplete instead.
FAULT_MARKERS = (
    "Access violation",
    "ProgramFailedToComplete",
    "unsupported BPF instruction",
    "exceeded maximum",
    "Program failed to complete",
)


def _mutate(rng: random.Random, data: bytes) -> bytes:
    choice = rng.randrange(6)
    if choice == 0:
        return rng.randbytes(rng.randrange(0, 80))
    if choice == 1:
        return data[:8] + rng.randbytes(rng.randrange(0, 64))
    if choice == 2:
        return data[: rng.randrange(0, len(data) + 1)]
    if choice == 3:
        return data + rng.randbytes(rng.randrange(1, 16))
    out = bytearray(data)
    for _ in range(rng.randrange(1, 4)):
        at = rng.randrange(len(out))
        out[at] = rng.randrange(256) if choice == 4 else out[at] ^ (1 << rng.randrange(8))
    return bytes(out)


def _fuzz(bed: Testbed, valid: list[tuple[Instruction, list[Keypair]]], seed: int) -> tuple[int, int]:
    rng = random.Random(seed)
    failures = successes = 0
    for _ in range(CASES):
        ix, signers = rng.choice(valid)
        mutated = Instruction(ix.program_id, _mutate(rng, bytes(ix.data)), ix.accounts)
        msg = Message.new_with_blockhash([mutated], signers[0].pubkey(), bed.svm.latest_blockhash())
        result = bed.svm.simulate_transaction(VersionedTransaction(msg, signers))
        if not isinstance(result, FailedTransactionMetadata):
            successes += 1
            continue
        failures += 1
        err = result.err()
        logs = "\n".join(result.meta().logs())
        assert not any(marker in logs for marker in FAULT_MARKERS), logs
        assert isinstance(err, TransactionErrorInstructionError), err
        if not isinstance(err.err, InstructionErrorCustom):
            assert str(err.err) in {
                "InvalidInstructionData",
                "NotEnoughAccountKeys",
                "InvalidArgument",
                "InsufficientFunds",
                "PrivilegeEscalation",
            }, (err, logs)
    return failures, successes


def test_fuzzed_instruction_data_only_fails_cleanly(bed: Testbed) -> None:
    owner, bot, sol, vault = trading_vault(bed)
    user_usdc = bed.token_account(owner.pubkey(), bed.usdc)
    bed.mint_to(bed.usdc, user_usdc, 10**6)
    vin = bed.vault.vault_token_account(owner.pubkey(), bed.usdc)
    vout = bed.vault.vault_token_account(owner.pubkey(), sol)
    newcomer = bed.funded_keypair()
    trader = bed.funded_keypair()
    t_usdc, t_sol = bed.token_account(trader.pubkey(), bed.usdc), bed.token_account(trader.pubkey(), sol)
    bed.mint_to(bed.usdc, t_usdc, 10**9)
    valid = [
        (bed.vault.initialize_vault(newcomer.pubkey()), [newcomer]),
        (bed.vault.deposit(owner.pubkey(), user_usdc, bed.usdc, 1000), [owner]),
        (bed.vault.withdraw(owner.pubkey(), user_usdc, bed.usdc, 1000), [owner]),
        (bed.vault.grant_bot_authority(owner.pubkey(), bot.pubkey()), [owner]),
        (bed.vault.revoke_bot_authority(owner.pubkey()), [owner]),
        (bed.vault.deactivate_vault(owner.pubkey()), [owner]),
        (bed.vault.set_swap_programs(bed.admin.pubkey(), [bed.amm.program_id]), [bed.admin]),
        (
            bed.vault.bot_trade(
                owner.pubkey(),
                bot.pubkey(),
                bed.usdc,
                sol,
                bed.amm.program_id,
                10**6,
                1,
                bed.amm.swap_data(10**6, 1),
                bed.amm.swap_accounts(vault, bed.usdc, sol, vin, vout),
            ),
            [bot],
        ),
        (bed.amm.swap(trader.pubkey(), bed.usdc, sol, t_usdc, t_sol, 10**6, 1), [trader]),
        (bed.amm.add_liquidity(trader.pubkey(), bed.usdc, sol, t_usdc, t_sol, 10, 10), [trader]),
        (bed.amm.initialize_pool(bed.admin.pubkey(), bed.usdc, sol, 30), [bed.admin]),
    ]
    names = {ix.data[:8] for ix, _ in valid}
    assert (
        len(names) == len({i.discriminator for i in VAULT.instructions + AMM.instructions}) - 1
    )  # all but init_config
    failures, successes = _fuzz(bed, valid, seed=20261122)
    assert failures > CASES // 2 and successes > 0
    assert bed.balance(vin) == 500_000_000  # simulations commit nothing
