"""The local chain's ledger: what makes ``--ledger DIR`` survive a restart.

Owns: the directory layout of a ledger (``ledger.jsonl`` plus ``keys/*.json``) and its on-disk
format. Design: the chain is a deterministic function of the transactions that landed, so the
ledger is an append-only log of every landed transaction's signed bytes with the slot and unix
time it landed at, plus ``mint`` notes that name the mints the local chain created (by symbol) and ``slot``
checkpoints (every few slots and at shutdown) so a restart resumes at the slot it stopped at.
At start-up the chain replays the log through a fresh LiteSVM at each entry's slot and clock,
with its own blockhash window bypassed (LiteSVM's own check is off). The bytes are re-verified,
which is why the keys the chain signs with (faucet, mint authority) are kept in ``keys/`` with
mode 0600: the faucet's account must be the same one after a restart.

Failure it contains: a crash in the middle of an append. Each entry is one line flushed as it is
written; a torn last line is cut off at start-up (the transaction it held had not been answered
yet, so no client was told it landed -- it is as if it was dropped). A bad line before the last is
corruption and refuses to start rather than serve a different chain.

May import: the standard library, attrs, solders.
"""

from __future__ import annotations

import base64
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Final

import attrs
from solders.keypair import Keypair

__all__ = ["Ledger", "LedgerCorrupt", "LedgerMint", "LedgerSlot", "LedgerTransaction", "write_keypair_file"]

logger = logging.getLogger(__name__)

LEDGER_FILE: Final = "ledger.jsonl"
KEYS_DIR: Final = "keys"


class LedgerCorrupt(Exception):
    """A ledger line other than the last one cannot be read."""


@attrs.frozen
class LedgerTransaction:
    """A transaction that landed: its signed bytes, the slot and the unix time it landed at."""

    slot: int
    unix_timestamp: int
    tx_bytes: bytes


@attrs.frozen
class LedgerMint:
    """A mint the local chain created and holds the authority of, under its symbol."""

    symbol: str
    mint: str
    decimals: int


@attrs.frozen
class LedgerSlot:
    """A slot checkpoint: the chain reached ``slot`` (written every few slots and at shutdown, so a
    restart resumes at the slot the chain was at, not at its last transaction's)."""

    slot: int
    unix_timestamp: int


LedgerEntry = LedgerTransaction | LedgerMint | LedgerSlot


def _encode(entry: LedgerEntry) -> str:
    if isinstance(entry, LedgerTransaction):
        record: dict[str, object] = {
            "kind": "tx",
            "slot": entry.slot,
            "unixTimestamp": entry.unix_timestamp,
            "tx": base64.b64encode(entry.tx_bytes).decode(),
        }
    elif isinstance(entry, LedgerSlot):
        record = {"kind": "slot", "slot": entry.slot, "unixTimestamp": entry.unix_timestamp}
    else:
        record = {"kind": "mint", "symbol": entry.symbol, "mint": entry.mint, "decimals": entry.decimals}
    return json.dumps(record, separators=(",", ":"))


def _decode(line: str) -> LedgerEntry:
    record = json.loads(line)
    if record["kind"] == "tx":
        return LedgerTransaction(
            slot=int(record["slot"]),
            unix_timestamp=int(record["unixTimestamp"]),
            tx_bytes=base64.b64decode(record["tx"], validate=True),
        )
    if record["kind"] == "slot":
        return LedgerSlot(slot=int(record["slot"]), unix_timestamp=int(record["unixTimestamp"]))
    if record["kind"] == "mint":
        return LedgerMint(
            symbol=str(record["symbol"]), mint=str(record["mint"]), decimals=int(record["decimals"])
        )
    raise ValueError(f"unknown ledger entry kind {record['kind']!r}")


def write_keypair_file(path: Path, keypair: Keypair) -> None:
    """Write ``keypair`` in the Solana CLI's JSON format, readable by its owner only."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(list(bytes(keypair)), out)
    os.chmod(path, 0o600)  # O_CREAT's mode does not apply to a file that already existed


def read_keypair_file(path: Path) -> Keypair:
    return Keypair.from_bytes(bytes(json.loads(path.read_text())))


class Ledger:
    """An open ledger directory: read its entries once, then append as transactions land."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        (directory / KEYS_DIR).mkdir(mode=0o700, exist_ok=True)
        self._path = directory / LEDGER_FILE
        self._entries = self._read_and_repair()
        self._out: IO[str] = self._path.open("a", encoding="utf-8")

    def _read_and_repair(self) -> list[LedgerEntry]:
        if not self._path.exists():
            return []
        raw = self._path.read_text(encoding="utf-8")
        lines = raw.split("\n")
        entries: list[LedgerEntry] = []
        good_length = 0
        for index, line in enumerate(lines):
            if not line:
                good_length += 1 if index < len(lines) - 1 else 0
                continue
            try:
                entries.append(_decode(line))
            except (ValueError, KeyError, TypeError) as e:
                is_last = all(not rest for rest in lines[index + 1 :])
                if not is_last:
                    raise LedgerCorrupt(f"{self._path}: line {index + 1} unreadable: {e}") from e
                logger.warning("cutting a torn last ledger line", extra={"line": index + 1})
                with self._path.open("r+", encoding="utf-8") as f:
                    f.truncate(good_length)
                break
            good_length += len(line) + 1
        return entries

    def entries(self) -> Iterator[LedgerEntry]:
        """The entries found at start-up, oldest first."""
        return iter(self._entries)

    def append(self, entry: LedgerEntry) -> None:
        self._out.write(_encode(entry) + "\n")
        self._out.flush()

    def keypair(self, name: str, first: Keypair | None = None) -> Keypair:
        """The ledger's keypair called ``name``; the first time it is asked for, ``first`` (or a
        fresh key) is stored (mode 0600) under that name."""
        path = self.directory / KEYS_DIR / f"{name}.json"
        if path.exists():
            return read_keypair_file(path)
        keypair = first or Keypair()
        write_keypair_file(path, keypair)
        return keypair

    def close(self) -> None:
        self._out.close()
