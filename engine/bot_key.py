"""The bot's signing key: where it is, and loading it only when the file is safe.

Owns: `bot_key_path` (the one place that decides which file holds the bot key) and
`load_bot_key`, which reads a Solana CLI keypair file (a JSON array of 64 integers 0-255) and
refuses, with a `BotKeyError` of one line naming the path and the problem, a file that is missing,
not a regular file, readable or writable by group or others (mode must be 0600 or 0400), too big,
not JSON, or not a valid keypair.

Secrets: the key's bytes never appear in an error, a log line or a repr. Note that
``str(Keypair)`` IS the base58 secret key (its ``repr`` is safe), so never format a `Keypair`
into text: log `describe_bot_key(keypair)`, which is its public key only.

Failure it contains: a bad key file, found at start before anything trades. The file is opened
once (no follow-up path lookups), non-blocking, and checked through its descriptor, so what is
checked is what is read.

May import: the standard library, solders, `engine.config`.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from solders.keypair import Keypair

from engine.config import Config

__all__ = ["BOT_KEY_FILE", "BotKeyError", "bot_key_path", "describe_bot_key", "load_bot_key"]

BOT_KEY_FILE: Final = "bot-keypair.json"
_MAX_BYTES: Final = 4096  # 64 numbers of at most 3 digits and their separators fit many times over
_KEY_LENGTH: Final = 64
_SAFE_MODES: Final = frozenset({0o600, 0o400})


class BotKeyError(Exception):
    """The bot key file cannot be used; the message names the path and the problem, never the key."""


def bot_key_path(config: Config, manifest: Mapping[str, Any] | None) -> Path:
    """BOT_KEYPAIR_PATH if set; else (embedded mode, a local chain's ``manifest``) the chain's bot
    key; else ``$XORJ_HOME/bot-keypair.json``."""
    if config.bot_keypair_path is not None:
        return config.bot_keypair_path
    if manifest is not None:
        authority = manifest.get("botAuthority")
        if isinstance(authority, Mapping) and isinstance(authority.get("keypairFile"), str):
            return Path(authority["keypairFile"])
    return config.xorj_home / BOT_KEY_FILE


def describe_bot_key(keypair: Keypair) -> str:
    """What may be logged about the bot key: its public key."""
    return f"bot key {keypair.pubkey()}"


def _read(path: Path) -> bytes:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise BotKeyError(f"bot key {path}: no such file") from None
    except PermissionError:
        raise BotKeyError(f"bot key {path}: permission denied (the engine's user cannot read it)") from None
    except OSError as exc:
        raise BotKeyError(f"bot key {path}: cannot be opened ({exc.strerror})") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise BotKeyError(f"bot key {path}: not a regular file")
        mode = stat.S_IMODE(info.st_mode)
        if mode not in _SAFE_MODES:
            raise BotKeyError(f"bot key {path}: mode {mode:04o} is not 0600 or 0400 (others must not read"
                              f" or write a signing key); run `chmod 600 {path}`")
        if info.st_size > _MAX_BYTES:
            raise BotKeyError(f"bot key {path}: {info.st_size} bytes is too big for a keypair file")
        chunks: list[bytes] = []
        while chunk := os.read(fd, _MAX_BYTES + 1):
            chunks.append(chunk)
            if sum(map(len, chunks)) > _MAX_BYTES:
                raise BotKeyError(f"bot key {path}: too big for a keypair file")
        return b"".join(chunks)
    except OSError as exc:
        raise BotKeyError(f"bot key {path}: cannot be read ({exc.strerror})") from None
    finally:
        os.close(fd)


def load_bot_key(path: Path) -> Keypair:
    """The bot's keypair from a Solana CLI keypair file; `BotKeyError` if the file is not safe or valid."""
    raw = _read(path)
    try:
        numbers = json.loads(raw)
    except UnicodeDecodeError:
        raise BotKeyError(f"bot key {path}: not JSON (not UTF-8 text)") from None
    except json.JSONDecodeError as exc:
        # the position only: the decoder's message quotes nothing, but say less anyway
        raise BotKeyError(f"bot key {path}: not JSON (line {exc.lineno} column {exc.colno})") from None
    if not isinstance(numbers, list):
        raise BotKeyError(f"bot key {path}: expected a JSON array of {_KEY_LENGTH} integers,"
                          f" got a JSON {type(numbers).__name__}")
    if len(numbers) != _KEY_LENGTH:
        raise BotKeyError(f"bot key {path}: {len(numbers)} numbers, expected {_KEY_LENGTH}")
    for index, number in enumerate(numbers):
        if isinstance(number, bool) or not isinstance(number, int) or not 0 <= number <= 255:
            raise BotKeyError(f"bot key {path}: entry {index} is not an integer 0-255")
    try:
        return Keypair.from_bytes(bytes(numbers))
    except ValueError:
        raise BotKeyError(f"bot key {path}: not a valid ed25519 keypair (its public half does not"
                          " match its secret half)") from None
