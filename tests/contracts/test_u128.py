"""The AMM's hand-written 128-bit maths (contracts/programs/u128.h), run in the real SBF VM through
a probe program, against Python's integers."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.litesvm import LiteSVM
from solders.message import Message
from solders.pubkey import Pubkey
from solders.transaction import VersionedTransaction
from solders.transaction_metadata import SimulatedTransactionInfo

from contracts.amm_client import quote
from contracts.deploy import deploy_upgradeable

U64 = st.integers(min_value=0, max_value=2**64 - 1)
EDGES = st.sampled_from([0, 1, 2, 3, 2**32 - 1, 2**32, 2**32 + 1, 2**63 - 1, 2**63, 2**64 - 2, 2**64 - 1])
WORD = st.one_of(U64, EDGES)
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


class Probe:
    def __init__(self, elf: bytes) -> None:
        self.svm = LiteSVM()
        self.payer = Keypair()
        self.svm.airdrop(self.payer.pubkey(), 10**10)
        self.program_id: Pubkey = deploy_upgradeable(self.svm, self.payer, Keypair(), elf)

    def call(self, op: int, a: int, b: int = 0, c: int = 0, d: int = 0) -> bytes:
        data = struct.pack("<BQQQQ", op, a, b, c, d)
        msg = Message.new_with_blockhash(
            [Instruction(self.program_id, data, [])], self.payer.pubkey(), self.svm.latest_blockhash()
        )
        result = self.svm.simulate_transaction(VersionedTransaction(msg, [self.payer]))
        assert isinstance(result, SimulatedTransactionInfo), result
        return bytes(result.meta().return_data().data)


@pytest.fixture(scope="module")
def probe(probe_program: Path) -> Iterator[Probe]:
    yield Probe(probe_program.read_bytes())


@FAST
@given(a=WORD, b=WORD)
def test_mul_64x64_is_the_exact_128_bit_product(probe: Probe, a: int, b: int) -> None:
    hi, lo = struct.unpack("<QQ", probe.call(0, a, b))
    assert hi << 64 | lo == a * b


@FAST
@given(hi=WORD, lo=WORD, d=WORD)
def test_div_128_64_matches_python_floor_division_or_refuses_overflow(
    probe: Probe, hi: int, lo: int, d: int
) -> None:
    ok, q, r = struct.unpack("<BQQ", probe.call(1, hi, lo, d))
    if d == 0 or hi >= d:
        assert ok == 0
    else:
        n = hi << 64 | lo
        assert (ok, q, r) == (1, n // d, n % d)


@FAST
@given(d=st.integers(min_value=1, max_value=2**64 - 1), data=st.data())
def test_div_128_64_near_the_quotient_limit(probe: Probe, d: int, data: st.DataObject) -> None:
    n = data.draw(st.integers(min_value=max(0, d * (2**64 - 1) - 2**70), max_value=d * 2**64 - 1))
    ok, q, r = struct.unpack("<BQQ", probe.call(1, n >> 64, n & (2**64 - 1), d))
    assert (ok, q, r) == (1, n // d, n % d)


@FAST
@given(amount_in=WORD, reserve_in=WORD, reserve_out=WORD, fee=st.integers(min_value=0, max_value=1000))
def test_amm_quote_matches_the_python_formula(
    probe: Probe, amount_in: int, reserve_in: int, reserve_out: int, fee: int
) -> None:
    status, out = struct.unpack("<BQ", probe.call(2, amount_in, reserve_in, reserve_out, fee))
    if reserve_in == 0 or reserve_out == 0:
        assert status == 1
        return
    in_after_fee = amount_in * (10_000 - fee) // 10_000
    if reserve_in + in_after_fee >= 2**64:
        assert status == 2
        return
    assert (status, out) == (0, quote(amount_in, reserve_in, reserve_out, fee))
    assert out < reserve_out  # a swap can never empty the pool


@FAST
@given(
    amount_in=st.integers(min_value=1, max_value=2**40),
    reserve_in=st.integers(min_value=1, max_value=2**50),
    reserve_out=st.integers(min_value=1, max_value=2**50),
    fee=st.integers(min_value=0, max_value=1000),
)
def test_constant_product_never_decreases_after_a_swap(
    amount_in: int, reserve_in: int, reserve_out: int, fee: int
) -> None:
    out = quote(amount_in, reserve_in, reserve_out, fee)
    assert (reserve_in + amount_in) * (reserve_out - out) >= reserve_in * reserve_out
