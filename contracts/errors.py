"""Program error codes mapped to named exceptions.

Owns: one exception class per error each program can return (its own 6000+ errors, and Anchor's
framework errors that the programs return where Anchor would fail a constraint), and
`raise_for_error()` which turns a failed LiteSVM/RPC transaction into the right exception.
tests/contracts/test_idl.py checks these classes against `contracts.definitions`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from solders.transaction_status import InstructionErrorCustom, TransactionErrorInstructionError


class ProgramError(Exception):
    """A program returned an error; `code` is the custom error number."""

    code: int = -1

    def __init__(self, message: str = "", logs: tuple[str, ...] = ()) -> None:
        super().__init__(message or type(self).__name__)
        self.logs = logs


class UnknownProgramError(ProgramError):
    def __init__(self, code: int, message: str = "", logs: tuple[str, ...] = ()) -> None:
        super().__init__(message or f"custom program error {code}", logs)
        self.code = code


class TransactionFailed(Exception):
    """A transaction failed for a reason that is not a program's custom error."""

    def __init__(self, err: object, logs: tuple[str, ...] = ()) -> None:
        super().__init__(str(err))
        self.err = err
        self.logs = logs


class VaultError(ProgramError):
    """An error of the vault program (6000+)."""


class AmmError(ProgramError):
    """An error of the AMM program (6000+)."""


class AnchorError(ProgramError):
    """One of Anchor's framework errors (100-4999), returned where Anchor fails a constraint."""


class VaultInactive(VaultError):
    code = 6000


class InvalidAmount(VaultError):
    code = 6001


class InsufficientFunds(VaultError):
    code = 6002


class UnauthorizedBot(VaultError):
    code = 6003


class Overflow(VaultError):
    code = 6004


class Underflow(VaultError):
    code = 6005


class InvalidRouteData(VaultError):
    code = 6006


class SlippageExceeded(VaultError):
    code = 6007


class DepositCapExceeded(VaultError):
    code = 6008


class UnauthorizedAdmin(VaultError):
    code = 6009


class SwapProgramNotAllowed(VaultError):
    code = 6010


class InvalidMint(VaultError):
    code = 6011


class InvalidSwapProgramList(VaultError):
    code = 6012


class RouteTouchesOtherVaultAccount(VaultError):
    code = 6013


class VaultTokenAccountChanged(VaultError):
    code = 6014


class AmmInvalidAmount(AmmError):
    code = 6000


class AmmSlippageExceeded(AmmError):
    code = 6001


class AmmInvalidPoolAccount(AmmError):
    code = 6002


class AmmMathOverflow(AmmError):
    code = 6003


class AmmInvalidMintOrder(AmmError):
    code = 6004


class AmmInvalidFee(AmmError):
    code = 6005


class AmmEmptyPool(AmmError):
    code = 6006


class InstructionMissing(AnchorError):
    code = 100


class InstructionFallbackNotFound(AnchorError):
    code = 101


class InstructionDidNotDeserialize(AnchorError):
    code = 102


class ConstraintMut(AnchorError):
    code = 2000


class ConstraintHasOne(AnchorError):
    code = 2001


class ConstraintSigner(AnchorError):
    code = 2002


class ConstraintSeeds(AnchorError):
    code = 2006


class ConstraintAddress(AnchorError):
    code = 2012


class ConstraintTokenMint(AnchorError):
    code = 2014


class ConstraintTokenOwner(AnchorError):
    code = 2015


class ConstraintDuplicateMutableAccount(AnchorError):
    code = 2040


class AccountDiscriminatorNotFound(AnchorError):
    code = 3001


class AccountDiscriminatorMismatch(AnchorError):
    code = 3002


class AccountDidNotDeserialize(AnchorError):
    code = 3003


class AccountNotEnoughKeys(AnchorError):
    code = 3005


class AccountNotMutable(AnchorError):
    code = 3006


class AccountOwnedByWrongProgram(AnchorError):
    code = 3007


class InvalidProgramId(AnchorError):
    code = 3008


class AccountNotSigner(AnchorError):
    code = 3010


class AccountNotInitialized(AnchorError):
    code = 3012


class AccountNotProgramData(AnchorError):
    code = 3013


ANCHOR_ERRORS: dict[int, type[AnchorError]] = {c.code: c for c in AnchorError.__subclasses__()}
VAULT_ERRORS: dict[int, type[VaultError]] = {c.code: c for c in VaultError.__subclasses__()}
AMM_ERRORS: dict[int, type[AmmError]] = {c.code: c for c in AmmError.__subclasses__()}


def error_for_code(code: int, program: str = "vault", logs: tuple[str, ...] = ()) -> ProgramError:
    """The exception for a custom error `code` returned by `program` ("vault", "amm", or anything else)."""
    if program not in ("vault", "amm"):
        return UnknownProgramError(code, f"custom error {code} from program {program}", logs)
    if code in ANCHOR_ERRORS:
        return ANCHOR_ERRORS[code]("", logs)
    if program == "vault" and code in VAULT_ERRORS:
        return VAULT_ERRORS[code]("", logs)
    if program == "amm" and code in AMM_ERRORS:
        return AMM_ERRORS[code]("", logs)
    return UnknownProgramError(code, "", logs)


def custom_code(err: object) -> int | None:
    """The custom error number inside a transaction error, if it is one."""
    if isinstance(err, TransactionErrorInstructionError) and isinstance(err.err, InstructionErrorCustom):
        return int(err.err.code)
    return None


_FAILED = re.compile(r"^Program (\w+) failed: custom program error: 0x[0-9a-f]+$")


def failing_program(logs: Iterable[str]) -> str | None:
    """The program that raised a custom error: the innermost (first) one that logged a failure, since
    a failed CPI makes every caller above it fail with the same code."""
    for line in logs:
        match = _FAILED.match(line)
        if match:
            return match[1]
    return None


def raise_for_error(
    err: object, logs: tuple[str, ...] = (), programs: Mapping[str, str] | None = None
) -> None:
    """Raise the named exception for a failed transaction, else TransactionFailed.

    `programs` maps program ids (base58) to "vault" / "amm"; the logs say which program raised the code,
    so an AMM error inside a bot_trade is reported as the AMM's, not misread as a vault error."""
    code = custom_code(err)
    if code is not None:
        failing = failing_program(logs)
        names = programs or {}
        program = names.get(failing, failing) if failing is not None else "vault"
        raise error_for_code(code, program, logs)
    raise TransactionFailed(err, logs)
