"""The SBF linker: what it links runs in the real runtime after a real deploy; what SBF v0 cannot
load is refused with a clear message."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.litesvm import LiteSVM
from solders.message import Message
from solders.transaction import VersionedTransaction
from solders.transaction_metadata import TransactionMetadata

from contracts.build import compile_c
from contracts.deploy import deploy_upgradeable
from contracts.sbf_linker import EM_BPF, ET_DYN, MM_PROGRAM_START, LinkError, link

MAIN = r"""
#include "sol.h"
static const char *const WORDS[3] = {"alpha", "beta", "gamma"};   /* pointers inside .rodata */
static const uint64_t LENS[3] = {5, 4, 5};
__attribute__((noinline)) static uint64_t twice(uint64_t x) { return x * 2; }
__attribute__((noinline)) uint64_t add3(uint64_t x) { return twice(x) + 3; }  /* global: relocated call */
extern uint64_t times_ten(uint64_t x);                                       /* in the other object */
uint64_t entrypoint(const uint8_t *input) {
  SolParameters p;
  sol_deserialize(input, &p);
  uint64_t i = p.data_len ? p.data[0] % 3 : 0;
  sol_log_(WORDS[i], LENS[i]);
  sol_log_64_(add3(i), times_ten(i), 0, 0, 0);
  return 0;
}
"""
OTHER = r"""
typedef unsigned long uint64_t;
__attribute__((noinline)) uint64_t times_ten(uint64_t x) { return x * 10; }
"""


def _compile(tmp_path: Path, name: str, source: str) -> bytes:
    src = tmp_path / f"{name}.c"
    src.write_text(source)
    obj = tmp_path / f"{name}.o"
    compile_c(src, obj)
    return obj.read_bytes()


def _run(elf: bytes, data: bytes) -> TransactionMetadata:
    svm = LiteSVM()
    payer = Keypair()
    svm.airdrop(payer.pubkey(), 10**11)
    program_id = deploy_upgradeable(svm, payer, Keypair(), elf)
    msg = Message.new_with_blockhash(
        [Instruction(program_id, data, [])], payer.pubkey(), svm.latest_blockhash()
    )
    result = svm.send_transaction(VersionedTransaction(msg, [payer]))
    assert isinstance(result, TransactionMetadata), result
    return result


def test_linked_objects_deploy_through_the_upgradeable_loader_and_run(tmp_path: Path) -> None:
    program = link([_compile(tmp_path, "main", MAIN), _compile(tmp_path, "other", OTHER)])
    logs = _run(program.elf, bytes([1])).logs()
    # rodata pointer table resolved, internal static + global calls and the cross-object call work
    assert "Program log: beta" in logs
    assert "Program log: 0x5, 0xa, 0x0, 0x0, 0x0" in logs
    assert {"sol_log_", "sol_log_64_"} <= set(program.syscalls)


def test_calls_across_function_sections_are_resolved(tmp_path: Path) -> None:
    src = tmp_path / "sections.c"
    src.write_text(MAIN)
    obj = tmp_path / "sections.o"
    compile_c(src, obj, extra_flags=("-ffunction-sections",))
    program = link([obj.read_bytes(), _compile(tmp_path, "other", OTHER)])
    assert "Program log: 0x7, 0x14, 0x0, 0x0, 0x0" in _run(program.elf, bytes([2])).logs()


def test_output_is_an_sbf_v0_shared_object_with_addresses_equal_to_offsets(tmp_path: Path) -> None:
    elf = link([_compile(tmp_path, "main", MAIN), _compile(tmp_path, "other", OTHER)]).elf
    assert elf[:4] == b"\x7fELF"
    e_type, e_machine = struct.unpack_from("<HH", elf, 16)
    (e_flags,) = struct.unpack_from("<I", elf, 48)
    assert (e_type, e_machine, e_flags) == (ET_DYN, EM_BPF, 0)
    (shoff,) = struct.unpack_from("<Q", elf, 40)
    (shnum,) = struct.unpack_from("<H", elf, 60)
    for i in range(shnum):
        _name, _typ, flags, addr, offset = struct.unpack_from("<IIQQQ", elf, shoff + 64 * i)
        if flags & 0x2:  # SHF_ALLOC
            assert addr == offset


def test_rodata_addresses_are_resolved_into_the_program_region(tmp_path: Path) -> None:
    program = link([_compile(tmp_path, "main", MAIN), _compile(tmp_path, "other", OTHER)])
    text_start = 64 + 56 * 4
    lddw = [i for i in range(text_start, text_start + program.text_size, 8) if program.elf[i] == 0x18]
    assert lddw
    for at in lddw:
        lo, hi = (
            struct.unpack_from("<I", program.elf, at + 4)[0],
            struct.unpack_from("<I", program.elf, at + 12)[0],
        )
        assert MM_PROGRAM_START <= (lo | hi << 32) < MM_PROGRAM_START + len(program.elf)


def test_linking_is_deterministic(tmp_path: Path) -> None:
    objs = [_compile(tmp_path, "main", MAIN), _compile(tmp_path, "other", OTHER)]
    assert link(objs).elf == link(objs).elf


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (
            "typedef unsigned long u64; static u64 counter;\n"
            "u64 entrypoint(const void *i) { (void)i; return ++counter; }",
            "mutable globals",
        ),
        (
            "typedef unsigned long u64; u64 counter = 7;\n"
            "u64 entrypoint(const void *i) { (void)i; return ++counter; }",
            "mutable globals",
        ),
        (
            "typedef unsigned long u64; extern void not_a_syscall(void);\n"
            "u64 entrypoint(const void *i) { (void)i; not_a_syscall(); return 0; }",
            "not a Solana syscall",
        ),
        ("typedef unsigned long u64; u64 helper(const void *i) { (void)i; return 0; }", "entry symbol"),
        (
            "typedef unsigned long u64; u64 entrypoint(const void *i) { (void)i; return 0; }\n"
            '__asm__(".section .rodata\\n.long entrypoint\\n");',
            "R_BPF_64_ABS32",
        ),
        (
            "typedef unsigned long u64; extern u64 table[4];\n"
            "u64 entrypoint(const void *i) { (void)i; return table[1]; }",
            "undefined data symbol",
        ),
    ],
    ids=["bss", "data", "unknown-syscall", "no-entrypoint", "abs32", "undefined-data"],
)
def test_what_sbf_v0_cannot_load_is_refused_clearly(tmp_path: Path, source: str, message: str) -> None:
    with pytest.raises(LinkError, match=message):
        link([_compile(tmp_path, "bad", source)])


def test_a_duplicate_definition_is_refused(tmp_path: Path) -> None:
    with pytest.raises(LinkError, match="duplicate definition of times_ten"):
        link(
            [_compile(tmp_path, "a", OTHER), _compile(tmp_path, "b", OTHER), _compile(tmp_path, "main", MAIN)]
        )


def test_a_non_elf_input_is_refused() -> None:
    with pytest.raises(LinkError, match="not an ELF"):
        link([b"hello"])
