"""Deploying a built program into LiteSVM through the upgradeable BPF loader.

Owns: the InitializeBuffer / Write / DeployWithMaxDataLen sequence (bincode-encoded loader
instructions). A real deploy is stricter than `LiteSVM.add_program`: the loader verifies the ELF
with `reject_broken_elfs` and refuses unknown syscalls, so tests and the local chain deploy this way.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from solders.instruction import AccountMeta, Instruction
from solders.keypair import Keypair
from solders.litesvm import LiteSVM
from solders.message import Message
from solders.pubkey import Pubkey
from solders.system_program import CreateAccountParams, create_account
from solders.sysvar import CLOCK, RENT
from solders.transaction import VersionedTransaction
from solders.transaction_metadata import FailedTransactionMetadata

BPF_LOADER_UPGRADEABLE = Pubkey.from_string("BPFLoaderUpgradeab1e11111111111111111111111")
SYSTEM_PROGRAM = Pubkey.from_string("11111111111111111111111111111111")
_BUFFER_METADATA = 37
_PROGRAM_SIZE = 36
_CHUNK = 900


class DeployError(Exception):
    """The loader refused the program; the message carries the runtime's error and logs."""


def _send(svm: LiteSVM, payer: Keypair, ixs: list[Instruction], extra: list[Keypair]) -> None:
    signers = [payer, *[k for k in extra if k.pubkey() != payer.pubkey()]]
    msg = Message.new_with_blockhash(ixs, payer.pubkey(), svm.latest_blockhash())
    result = svm.send_transaction(VersionedTransaction(msg, signers))
    if isinstance(result, FailedTransactionMetadata):
        raise DeployError(f"{result.err()}: {list(result.meta().logs())}")


def deploy_steps(
    payer: Keypair, program: Keypair, buffer: Keypair, elf: bytes, rent: Callable[[int], int]
) -> list[tuple[list[Instruction], list[Keypair]]]:
    """The upgradeable loader's InitializeBuffer / Write... / DeployWithMaxDataLen, as transactions:
    each is its instructions and the signers it needs besides `payer`. `rent(space)` is the
    chain's rent-exempt minimum. Whoever sends them (LiteSVM here, the local chain's own send path
    in genesis) signs with `payer` as fee payer and upgrade authority."""
    buffer_space = _BUFFER_METADATA + len(elf)
    steps: list[tuple[list[Instruction], list[Keypair]]] = [(
        [
            create_account(
                CreateAccountParams(
                    from_pubkey=payer.pubkey(),
                    to_pubkey=buffer.pubkey(),
                    lamports=rent(buffer_space),
                    space=buffer_space,
                    owner=BPF_LOADER_UPGRADEABLE,
                )
            ),
            Instruction(
                BPF_LOADER_UPGRADEABLE,
                struct.pack("<I", 0),
                [AccountMeta(buffer.pubkey(), False, True), AccountMeta(payer.pubkey(), False, False)],
            ),
        ],
        [buffer],
    )]
    for offset in range(0, len(elf), _CHUNK):
        chunk = elf[offset : offset + _CHUNK]
        data = struct.pack("<IIQ", 1, offset, len(chunk)) + chunk
        steps.append(([
            Instruction(
                BPF_LOADER_UPGRADEABLE,
                data,
                [AccountMeta(buffer.pubkey(), False, True), AccountMeta(payer.pubkey(), True, False)],
            )
        ], []))
    programdata, _ = Pubkey.find_program_address([bytes(program.pubkey())], BPF_LOADER_UPGRADEABLE)
    steps.append((
        [
            create_account(
                CreateAccountParams(
                    from_pubkey=payer.pubkey(),
                    to_pubkey=program.pubkey(),
                    lamports=rent(_PROGRAM_SIZE),
                    space=_PROGRAM_SIZE,
                    owner=BPF_LOADER_UPGRADEABLE,
                )
            ),
            Instruction(
                BPF_LOADER_UPGRADEABLE,
                struct.pack("<IQ", 2, len(elf) * 2),
                [
                    AccountMeta(payer.pubkey(), True, True),
                    AccountMeta(programdata, False, True),
                    AccountMeta(program.pubkey(), False, True),
                    AccountMeta(buffer.pubkey(), False, True),
                    AccountMeta(RENT, False, False),
                    AccountMeta(CLOCK, False, False),
                    AccountMeta(SYSTEM_PROGRAM, False, False),
                    AccountMeta(payer.pubkey(), True, False),
                ],
            ),
        ],
        [program],
    ))
    return steps


def deploy_upgradeable(svm: LiteSVM, payer: Keypair, program: Keypair, elf: bytes) -> Pubkey:
    """Deploy `elf` at `program`'s address with `payer` as upgrade authority; return the program id."""
    for ixs, extra in deploy_steps(payer, program, Keypair(), elf, svm.minimum_balance_for_rent_exemption):
        _send(svm, payer, ixs, extra)
    # Deployed programs become visible from the next slot on.
    svm.warp_to_slot(svm.get_clock().slot + 1)
    return program.pubkey()
