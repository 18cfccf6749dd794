"""Enrolled users and their copy-trading settings: the `users` and `user_settings` rows.

Owns: the risk profiles and their defaults (DESIGN section 8), the validation of every user
setting (`validate_*`, shared by this store and the ``xorj ctl users`` command layer, so a value
is judged by one set of rules whichever way it arrives), and every SQL statement that reads or
writes a user. A user's id is derived from the owner's wallet (``user-`` + the first 16 hex digits
of its sha256): enrolling the same owner twice is a clear `AlreadyEnrolled`, never a second row.

Slippage follows the profile unless customised: ``add`` stores the profile's default when none is
given, and ``set(risk_profile=...)`` without a slippage moves a slippage still equal to the old
profile's default to the new profile's default (decided in SQL, in the same UPDATE). The other
limits are NULL until set; `UserSettings.effective_*` gives the profile's default then.

Batching: concurrent `get` calls share one round trip (`actors.batcher.Batcher`): a batch of one
runs the single-row SELECT, a larger one a single ``WHERE u.id = ANY($1) OR u.wallet_address =
ANY($1)`` SELECT, each caller getting the row its own key names (by user id first, then by owner).

Failure it contains: bad input (`InvalidSetting`, naming the field and the problem, raised before
any SQL runs), an owner enrolled twice (`AlreadyEnrolled`), an unknown user (`UnknownUser`). A
database that is down or slow is not contained: every call has a deadline and the typed errors of
`sql.errors` propagate to the caller.

May import: the standard library, attrs, solders, `sql`, `actors.database`, `actors.batcher`. Never
imports `engine`.
"""

from __future__ import annotations

import builtins
import enum
import hashlib
from collections.abc import Mapping, Sequence
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from types import MappingProxyType
from typing import Final

import attrs
from solders.pubkey import Pubkey

from actors.batcher import Batcher, outcome
from actors.database import Database, Row
from sql.errors import UniqueViolation
from sql.statements import Statement

__all__ = [
    "PROFILE_DEFAULTS",
    "SLIPPAGE_HARD_CAP_PCT",
    "AlreadyEnrolled",
    "InvalidSetting",
    "ProfileDefaults",
    "RiskProfile",
    "UnknownUser",
    "UserSettings",
    "UserStore",
    "user_id_for",
    "validate_changes",
    "validate_max_daily_loss_usd",
    "validate_max_position_pct",
    "validate_max_trade_usd",
    "validate_owner",
    "validate_reason",
    "validate_risk_profile",
    "validate_slippage_pct",
]


class RiskProfile(enum.StrEnum):
    CONSERVATIVE = "CONSERVATIVE"
    BALANCED = "BALANCED"
    AGGRESSIVE = "AGGRESSIVE"

    @classmethod
    def parse(cls, text: str) -> RiskProfile:
        """'conservative', 'Balanced', 'AGGRESSIVE' ... -> the profile; `InvalidSetting` otherwise."""
        try:
            return cls(text.strip().upper())
        except ValueError:
            names = ", ".join(p.lower() for p in cls)
            raise InvalidSetting("risk_profile", f"unknown profile {text!r}; use one of {names}") from None


@attrs.frozen
class ProfileDefaults:
    slippage_pct: Decimal
    max_position_pct: Decimal  # percent of the vault's value one non-USDC position may reach
    max_trader_drawdown_pct: Decimal  # traders with a larger max drawdown do not fit the profile


PROFILE_DEFAULTS: Final[Mapping[RiskProfile, ProfileDefaults]] = MappingProxyType({
    RiskProfile.CONSERVATIVE: ProfileDefaults(Decimal("0.5"), Decimal(25), Decimal(20)),
    RiskProfile.BALANCED: ProfileDefaults(Decimal("1.0"), Decimal(40), Decimal(35)),
    RiskProfile.AGGRESSIVE: ProfileDefaults(Decimal("2.0"), Decimal(60), Decimal(100)),
})
SLIPPAGE_HARD_CAP_PCT: Final = Decimal(5)
# decimal(20, 6) columns hold at most 14 integer digits.
_USD_MAX: Final = Decimal(10) ** 14
_USD_QUANTUM: Final = Decimal("0.000001")
_PCT_QUANTUM: Final = Decimal("0.01")
_REASON_MAX: Final = 500


class InvalidSetting(ValueError):
    """A user setting that is refused; the message names the field and the problem."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


class AlreadyEnrolled(Exception):
    def __init__(self, owner: str, user_id: str) -> None:
        super().__init__(f"{owner} is already enrolled (user {user_id})")
        self.owner = owner
        self.user_id = user_id


class UnknownUser(LookupError):
    def __init__(self, owner_or_id: str) -> None:
        super().__init__(f"unknown user {owner_or_id!r} (enrol it with `users add <owner>`)")
        self.owner_or_id = owner_or_id


# -- validation ---------------------------------------------------------------------------------


def validate_owner(owner: str, field: str = "owner") -> str:
    """A base58 Solana public key (32 bytes), in its canonical spelling."""
    candidate = owner.strip()
    if not 32 <= len(candidate) <= 44:
        raise InvalidSetting(field, f"{owner!r} is not a base58 public key (length {len(candidate)})")
    try:
        key = Pubkey.from_string(candidate)
    except ValueError:
        raise InvalidSetting(field, f"{owner!r} is not a base58 public key") from None
    if str(key) != candidate:
        raise InvalidSetting(field, f"{owner!r} is not a canonical base58 public key")
    return candidate


def validate_risk_profile(value: str | RiskProfile) -> RiskProfile:
    return value if isinstance(value, RiskProfile) else RiskProfile.parse(value)


def _decimal(field: str, value: object) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal | str):
        raise InvalidSetting(field, f"must be a number, got {value!r}")
    try:
        # str() first: 0.1 means 0.1, not the binary float's 0.1000000000000000055...
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise InvalidSetting(field, f"must be a number, got {value!r}") from None
    if not number.is_finite():
        raise InvalidSetting(field, f"must be a finite number, got {value!r}")
    return number


def _usd(field: str, value: object) -> Decimal:
    number = _decimal(field, value)
    if number <= 0:
        raise InvalidSetting(field, f"must be above 0 USD, got {value}")
    if number >= _USD_MAX:
        raise InvalidSetting(field, f"must be below {_USD_MAX:,} USD, got {value}")
    rounded = number.quantize(_USD_QUANTUM, rounding=ROUND_HALF_EVEN)
    if rounded <= 0:
        raise InvalidSetting(field, f"must be at least 0.000001 USD, got {value}")
    return rounded


def _pct(field: str, value: object, cap: Decimal, cap_name: str) -> Decimal:
    number = _decimal(field, value)
    if number <= 0:
        raise InvalidSetting(field, f"must be above 0 %, got {value}")
    if number > cap:
        raise InvalidSetting(field, f"{value} % is above the {cap_name} of {cap} %")
    rounded = number.quantize(_PCT_QUANTUM, rounding=ROUND_HALF_EVEN)
    if rounded <= 0:
        raise InvalidSetting(field, f"must be at least 0.01 %, got {value}")
    return rounded


def validate_max_trade_usd(value: object) -> Decimal:
    return _usd("max_trade_usd", value)


def validate_max_daily_loss_usd(value: object) -> Decimal:
    return _usd("max_daily_loss_usd", value)


def validate_slippage_pct(value: object) -> Decimal:
    return _pct("slippage_pct", value, SLIPPAGE_HARD_CAP_PCT, "hard cap")


def validate_max_position_pct(value: object) -> Decimal:
    return _pct("max_position_pct", value, Decimal(100), "maximum")


def validate_reason(reason: str) -> str:
    text = reason.strip()
    if not text:
        raise InvalidSetting("reason", "must not be empty")
    if len(text) > _REASON_MAX:
        raise InvalidSetting("reason", f"must be at most {_REASON_MAX} characters, got {len(text)}")
    return text


def user_id_for(owner: str) -> str:
    """The user id of an owner wallet: deterministic, so the same owner is always the same user."""
    return "user-" + hashlib.sha256(owner.encode()).hexdigest()[:16]


# -- the record ---------------------------------------------------------------------------------


@attrs.frozen
class UserSettings:
    """One enrolled user's row (users + user_settings); limits left unset are None."""

    user_id: str
    owner: str  # users.wallet_address, base58: the vault's owner
    risk_profile: RiskProfile
    max_trade_usd: Decimal | None
    slippage_pct: Decimal
    max_daily_loss_usd: Decimal | None
    max_position_pct: Decimal | None
    bot_enabled: bool
    vault_address: str | None
    disabled_reason: str | None = None

    @property
    def profile(self) -> ProfileDefaults:
        return PROFILE_DEFAULTS[self.risk_profile]

    @property
    def effective_slippage_pct(self) -> Decimal:
        """Always stored (the profile's default when none was given), so this is the stored value."""
        return self.slippage_pct

    @property
    def effective_max_position_pct(self) -> Decimal:
        return self.profile.max_position_pct if self.max_position_pct is None else self.max_position_pct

    @property
    def effective_max_trader_drawdown_pct(self) -> Decimal:
        return self.profile.max_trader_drawdown_pct

    def effective_max_trade_usd(self, default: Decimal) -> Decimal:
        """The user's largest single trade; ``default`` (the engine's DEFAULT_MAX_TRADE_USD) when unset."""
        return default if self.max_trade_usd is None else self.max_trade_usd


_COLUMNS: Final = (
    "u.id AS user_id, u.wallet_address AS owner, s.risk_profile, s.max_trade_amount,"
    " s.slippage_tolerance, s.max_daily_loss_usd, s.max_position_pct, s.bot_enabled, s.vault_address,"
    " s.disabled_reason"
)
_SELECT: Final = f"SELECT {_COLUMNS} FROM users u JOIN user_settings s ON s.user_id = u.id"
_WHO: Final = "(u.id = $1 OR u.wallet_address = $1)"
_ANY_OF: Final = "(u.id = ANY($1::varchar[]) OR u.wallet_address = ANY($1::varchar[]))"
# The UPDATEs below join users to find the row and return the same columns as _SELECT.
_UPDATE_FROM: Final = "FROM users u WHERE s.user_id = u.id AND " + _WHO


def _record(row: Row) -> UserSettings:
    return UserSettings(
        user_id=row["user_id"], owner=row["owner"], risk_profile=RiskProfile(row["risk_profile"]),
        max_trade_usd=row["max_trade_amount"], slippage_pct=row["slippage_tolerance"],
        max_daily_loss_usd=row["max_daily_loss_usd"], max_position_pct=row["max_position_pct"],
        bot_enabled=bool(row["bot_enabled"]), vault_address=row["vault_address"],
        disabled_reason=row["disabled_reason"],
    )


# The settings `set` accepts; None clears a limit (the profile's default applies again).
_SETTABLE: Final = ("risk_profile", "max_trade_usd", "slippage_pct", "max_daily_loss_usd", "max_position_pct")
_CLEARABLE: Final = frozenset({"max_trade_usd", "max_daily_loss_usd", "max_position_pct"})
_COLUMN_OF: Final = {
    "risk_profile": "risk_profile",
    "max_trade_usd": "max_trade_amount",
    "slippage_pct": "slippage_tolerance",
    "max_daily_loss_usd": "max_daily_loss_usd",
    "max_position_pct": "max_position_pct",
}
_VALIDATORS: Final = {
    "max_trade_usd": validate_max_trade_usd,
    "slippage_pct": validate_slippage_pct,
    "max_daily_loss_usd": validate_max_daily_loss_usd,
    "max_position_pct": validate_max_position_pct,
}


def validate_changes(changes: Mapping[str, object]) -> dict[str, object]:
    """``set``'s keyword arguments, validated: column name -> value (a `RiskProfile`, a Decimal or None)."""
    unknown = sorted(set(changes) - set(_SETTABLE))
    if unknown:
        raise InvalidSetting(unknown[0], f"cannot be set; settable: {', '.join(_SETTABLE)}")
    if not changes:
        raise InvalidSetting("settings", f"nothing to change; give one of {', '.join(_SETTABLE)}")
    out: dict[str, object] = {}
    for name, value in changes.items():
        if value is None:
            if name not in _CLEARABLE:
                raise InvalidSetting(name, "cannot be cleared")
            out[_COLUMN_OF[name]] = None
        elif name == "risk_profile":
            if not isinstance(value, str):
                raise InvalidSetting(name, f"must be a profile name, got {value!r}")
            out[_COLUMN_OF[name]] = validate_risk_profile(value)
        else:
            out[_COLUMN_OF[name]] = _VALIDATORS[name](value)
    return out


def _slippage_follows_profile(new_profile_param: int) -> str:
    """SQL: the new profile's default slippage if the row's slippage is its old profile's default."""
    defaults = " ".join(f"WHEN '{p.value}' THEN {PROFILE_DEFAULTS[p].slippage_pct}" for p in RiskProfile)
    return (f"CASE WHEN s.slippage_tolerance = (CASE s.risk_profile {defaults} END)"
            f" THEN (CASE ${new_profile_param}::varchar {defaults} END)"
            " ELSE s.slippage_tolerance END")


# -- the store ----------------------------------------------------------------------------------


class UserStore:
    """Every read and write of users and their settings, each under ``timeout_s``."""

    def __init__(self, db: Database, timeout_s: float) -> None:
        self._db = db
        self._timeout_s = timeout_s
        self._gets: Batcher[str, UserSettings | None] = Batcher(self._get_many)

    async def add(
        self, owner: str, *, risk_profile: str | RiskProfile | None = None,
        max_trade_usd: object = None, slippage_pct: object = None,
    ) -> UserSettings:
        """Enrol ``owner`` (bot disabled). `AlreadyEnrolled` if it is; `InvalidSetting` on bad input."""
        owner = validate_owner(owner)
        profile = RiskProfile.BALANCED if risk_profile is None else validate_risk_profile(risk_profile)
        max_trade = None if max_trade_usd is None else validate_max_trade_usd(max_trade_usd)
        slippage = (PROFILE_DEFAULTS[profile].slippage_pct if slippage_pct is None
                    else validate_slippage_pct(slippage_pct))
        user_id = user_id_for(owner)
        statements: Sequence[Statement] = (
            ("INSERT INTO users (id, wallet_address) VALUES ($1, $2)", (user_id, owner)),
            ("INSERT INTO user_settings (user_id, risk_profile, max_trade_amount, slippage_tolerance)"
             " VALUES ($1, $2, $3, $4)", (user_id, profile.value, max_trade, slippage)),
            (f"{_SELECT} WHERE u.id = $1", (user_id,)),
        )
        try:
            results = await self._db.transaction(statements, timeout=self._timeout_s)
        except UniqueViolation:
            raise AlreadyEnrolled(owner, user_id) from None
        return _record(results[2][0])

    async def get(self, owner_or_id: str) -> UserSettings | None:
        return await self._gets.submit(owner_or_id.strip())

    async def _get_one(self, key: str) -> UserSettings | None:
        row = await self._db.fetchrow(f"{_SELECT} WHERE {_WHO}", key, timeout=self._timeout_s)
        return None if row is None else _record(row)

    async def _get_many(self, keys: Sequence[str]) -> builtins.list[UserSettings | Exception | None]:
        if len(keys) == 1:
            return [await outcome(self._get_one(keys[0]))]
        rows = await self._db.fetch(f"{_SELECT} WHERE {_ANY_OF}", sorted(set(keys)), timeout=self._timeout_s)
        users = [_record(r) for r in rows]
        by_id = {u.user_id: u for u in users}
        by_owner = {u.owner: u for u in users}
        return [by_id.get(k, by_owner.get(k)) for k in keys]

    async def list(self) -> list[UserSettings]:
        rows = await self._db.fetch(f"{_SELECT} ORDER BY u.created_at, u.id", timeout=self._timeout_s)
        return [_record(r) for r in rows]

    async def enabled(self) -> builtins.list[UserSettings]:
        """Every user with the bot enabled: one SELECT (the node calls it at start, for every user)."""
        rows = await self._db.fetch(f"{_SELECT} WHERE s.bot_enabled ORDER BY u.id", timeout=self._timeout_s)
        return [_record(r) for r in rows]

    async def set(self, owner: str, **changes: object) -> UserSettings:
        """Change settings (validated first); `UnknownUser` if ``owner`` (or user id) is not enrolled."""
        columns = validate_changes(changes)
        args: list[object] = [owner.strip()]
        assignments: list[str] = []
        for column, value in columns.items():
            args.append(value.value if isinstance(value, RiskProfile) else value)
            assignments.append(f"{column} = ${len(args)}")
        profile = columns.get("risk_profile")
        if isinstance(profile, RiskProfile) and "slippage_tolerance" not in columns:
            args.append(profile.value)
            assignments.append(f"slippage_tolerance = {_slippage_follows_profile(len(args))}")
        return await self._update(owner, ", ".join(assignments), args)

    async def enable(self, owner: str, vault_address: str) -> UserSettings:
        """Mark the bot enabled for ``owner`` with the vault the enable check found."""
        vault = validate_owner(vault_address, "vault_address")
        return await self._update(
            owner, "bot_enabled = true, vault_address = $2, enabled_at = now(), disabled_reason = NULL",
            [owner.strip(), vault])

    async def disable(self, owner: str, reason: str) -> UserSettings:
        """Mark the bot disabled for ``owner``, keeping ``reason``; idempotent."""
        text = validate_reason(reason)
        return await self._update(owner, "bot_enabled = false, disabled_reason = $2", [owner.strip(), text])

    async def _update(self, owner: str, assignments: str, args: Sequence[object]) -> UserSettings:
        row = await self._db.fetchrow(
            f"UPDATE user_settings s SET {assignments} {_UPDATE_FROM} RETURNING {_COLUMNS}",
            *args, timeout=self._timeout_s)
        if row is None:
            raise UnknownUser(owner)
        return _record(row)
