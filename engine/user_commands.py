"""``xorj ctl users add | list | set | enable | disable``: enrolling users and switching their bot.

Owns: the ``users`` control-socket command (`user_commands(store, enabler)`, merged by the node
into its command table), its ``xorj ctl`` side (`CTL`, with the renderer: a table for ``list``,
one line otherwise), the `UserEnabler` protocol the node implements (run the vault check and
start the user's executor; stop it), and `enroll_demo_users`, which embedded mode runs at start.

Enable order: the enabler checks the vault on chain and starts the executor; only when the check
is ok is the user stored as enabled with the vault the check found. Should that write fail, the
executor is stopped again, so the database (the source of truth at the next start) and the
running executors agree. Disable writes first (no new work is planned for a disabled user once
the row says so), then stops the executor.

Failure it contains: every bad input (a bad public key, an unknown profile, a slippage above the
5 % hard cap or not above 0, an unknown action, a missing owner, an unknown user), a refused vault,
an RPC or database failure -- each becomes a `CommandError`: one line to the operator.

May import: the standard library, trio, `actors`, `sql.errors`, `engine.control_socket`,
`engine.ctl_spec`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from decimal import Decimal
from typing import Any, Final, Protocol

import trio

from actors.rpc_client import RpcError
from actors.user_store import (
    AlreadyEnrolled,
    InvalidSetting,
    RiskProfile,
    UnknownUser,
    UserSettings,
    UserStore,
    validate_owner,
)
from actors.vault_check import VaultCheck
from engine.control_socket import CommandError, CommandSpec
from engine.ctl_spec import CtlArgument, CtlCommand, CtlOption, render_generic
from sql.errors import DatabaseError

__all__ = ["CTL", "UserEnabler", "enroll_demo_users", "render_users", "user_as_dict", "user_commands"]

logger = logging.getLogger(__name__)

ACTIONS: Final = ("add", "list", "set", "enable", "disable")
# Which options each action takes; anything else given is refused, not ignored.
_OPTIONS: Final[Mapping[str, frozenset[str]]] = {
    "add": frozenset({"risk_profile", "max_trade_usd", "slippage_pct"}),
    "list": frozenset(),
    "set": frozenset({"risk_profile", "max_trade_usd", "slippage_pct", "max_daily_loss_usd",
                      "max_position_pct"}),
    "enable": frozenset(),
    "disable": frozenset({"reason"}),
}
DEFAULT_DISABLE_REASON: Final = "disabled by the operator"
COMMAND_TIMEOUT_S: Final = 60.0  # enable asks the chain and starts an executor
_COMPENSATE_TIMEOUT_S: Final = 10.0


class UserEnabler(Protocol):
    """What the node does when a user's bot is switched on or off."""

    async def enable(self, user: UserSettings) -> VaultCheck:
        """Check ``user``'s vault on chain (`actors.vault_check.check_vault`) and, when ok, start
        the user's executor. Idempotent: an executor already running is left running."""
        ...

    async def disable(self, user: UserSettings) -> None:
        """Stop ``user``'s executor, if one runs."""
        ...


def _number(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def user_as_dict(user: UserSettings) -> dict[str, object]:
    return {
        "user_id": user.user_id,
        "owner": user.owner,
        "risk_profile": user.risk_profile.value,
        "max_trade_usd": _number(user.max_trade_usd),
        "slippage_pct": float(user.slippage_pct),
        "max_daily_loss_usd": _number(user.max_daily_loss_usd),
        "max_position_pct": _number(user.max_position_pct),
        "effective_max_position_pct": float(user.effective_max_position_pct),
        "max_trader_drawdown_pct": float(user.effective_max_trader_drawdown_pct),
        "bot_enabled": user.bot_enabled,
        "vault_address": user.vault_address,
        "disabled_reason": user.disabled_reason,
    }


async def _enable(
    store: UserStore, enabler: UserEnabler, user: UserSettings
) -> tuple[VaultCheck, UserSettings]:
    """The enable order (module docstring); the check comes back as is when it refused."""
    check = await enabler.enable(user)
    if not check.ok:
        return check, user
    try:
        return check, await store.enable(user.user_id, check.vault_address)
    except BaseException:
        # the executor must not outlive a failed write (shielded: this runs on cancellation too)
        with trio.CancelScope(shield=True, deadline=trio.current_time() + _COMPENSATE_TIMEOUT_S):
            await enabler.disable(user)
        raise


def user_commands(store: UserStore, enabler: UserEnabler) -> dict[str, CommandSpec]:
    async def known(action: str, owner: str) -> UserSettings:
        user = await store.get(owner)
        if user is None:
            raise CommandError(f"users {action}: {UnknownUser(owner)}")
        return user

    async def add(owner: str, args: Mapping[str, object]) -> object:
        try:
            profile = args.get("risk_profile")
            assert profile is None or isinstance(profile, str)
            user = await store.add(owner, risk_profile=profile, max_trade_usd=args.get("max_trade_usd"),
                                   slippage_pct=args.get("slippage_pct"))
        except AlreadyEnrolled as exc:
            raise CommandError(f"users add: {exc}") from None
        return {"action": "add", "user": user_as_dict(user)}

    async def list_(owner: str | None, _args: Mapping[str, object]) -> object:
        users = [await known("list", owner)] if owner is not None else await store.list()
        return {"action": "list", "users": [user_as_dict(u) for u in users]}

    async def set_(owner: str, args: Mapping[str, object]) -> object:
        changes = {k: v for k, v in args.items() if k in _OPTIONS["set"]}
        try:
            user = await store.set(owner, **changes)
        except UnknownUser as exc:
            raise CommandError(f"users set: {exc}") from None
        return {"action": "set", "user": user_as_dict(user)}

    async def enable(owner: str, _args: Mapping[str, object]) -> object:
        user = await known("enable", owner)
        try:
            check, user = await _enable(store, enabler, user)
        except RpcError as exc:
            raise CommandError(f"users enable: cannot check the vault of {user.owner}: {exc}") from None
        if not check.ok:
            raise CommandError(f"users enable: refused for {user.owner}: {check.reason}")
        return {"action": "enable", "user": user_as_dict(user)}

    async def disable(owner: str, args: Mapping[str, object]) -> object:
        user = await known("disable", owner)
        reason = _str(args.get("reason")) or DEFAULT_DISABLE_REASON
        user = await store.disable(user.user_id, reason)
        await enabler.disable(user)
        return {"action": "disable", "user": user_as_dict(user)}

    handlers: Mapping[str, Callable[[Any, Mapping[str, object]], Awaitable[object]]] = {
        "add": add, "list": list_, "set": set_, "enable": enable, "disable": disable,
    }

    async def users(args: Mapping[str, object]) -> object:
        action = args["action"]
        if action not in handlers:
            raise CommandError(f"users: unknown action {action!r}; use one of {', '.join(ACTIONS)}")
        assert isinstance(action, str)
        extra = sorted(k for k in args if k not in {"action", "owner"} | _OPTIONS[action])
        if extra:
            raise CommandError(f"users {action}: {_flag(extra[0])} does not apply to {action}")
        owner = _str(args.get("owner"))
        if owner is None and action != "list":
            raise CommandError(f"users {action}: missing the owner (the user's wallet, base58, or user id)")
        try:
            if owner is not None and not owner.startswith("user-"):
                owner = validate_owner(owner)
            return await handlers[action](owner, args)
        except InvalidSetting as exc:
            raise CommandError(f"users {action}: {exc}") from None
        except DatabaseError as exc:
            raise CommandError(f"users {action}: database: {exc}") from None

    return {
        "users": CommandSpec(
            users, required={"action": str},
            optional={"owner": str, "risk_profile": str, "max_trade_usd": float, "slippage_pct": float,
                      "max_daily_loss_usd": float, "max_position_pct": float, "reason": str},
            timeout=COMMAND_TIMEOUT_S,
            help="users add <owner> | list [owner] | set <owner> | enable <owner> | disable <owner>"),
    }


def _str(value: object) -> str | None:
    if value is None:
        return None
    assert isinstance(value, str)  # the control socket checked the declared type
    return value.strip() or None


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


async def enroll_demo_users(store: UserStore, enabler: UserEnabler, manifest: Mapping[str, Any]) -> list[str]:
    """Embedded mode, at start: enrol each of the local chain's demo users (balanced profile,
    default limits) if missing, and enable it unless it is enabled already or an operator disabled
    it (a disabled_reason is kept). Idempotent across restarts. A vault the check refuses is
    logged and skipped. Returns the demo owners whose bot is enabled after the call."""
    entries = manifest.get("demoUsers") or []
    if not isinstance(entries, list):
        raise ValueError("the manifest's demoUsers is not a list")
    enabled: list[str] = []
    for entry in entries:
        owner = entry.get("owner") if isinstance(entry, Mapping) else None
        if not isinstance(owner, str):
            raise ValueError(f"a manifest demo user has no owner: {entry!r}")
        user = await store.get(owner)
        if user is None:
            try:
                user = await store.add(owner, risk_profile=RiskProfile.BALANCED)
            except AlreadyEnrolled:  # another node of the cluster just did
                user = await store.get(owner)
                assert user is not None
        if not user.bot_enabled and user.disabled_reason is None:
            check, user = await _enable(store, enabler, user)
            if not check.ok:
                logger.warning("demo user not enabled", extra={"owner": owner, "reason": check.reason})
        if user.bot_enabled:
            enabled.append(owner)
    return enabled


# -- xorj ctl -------------------------------------------------------------------------------------


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _line(verb: str, user: Mapping[str, object]) -> str:
    bot = "enabled" if user.get("bot_enabled") else "disabled"
    if not user.get("bot_enabled") and user.get("disabled_reason"):
        bot += f" ({user['disabled_reason']})"
    return (f"{user.get('owner')} ({user.get('user_id')}) {verb}: {_cell(user.get('risk_profile'))},"
            f" slippage {_cell(user.get('slippage_pct'))} %,"
            f" max trade {_cell(user.get('max_trade_usd'))} USD,"
            f" max daily loss {_cell(user.get('max_daily_loss_usd'))} USD,"
            f" max position {_cell(user.get('effective_max_position_pct'))} %,"
            f" vault {_cell(user.get('vault_address'))}, bot {bot}")


_VERBS: Final = {"add": "enrolled", "set": "updated", "enable": "bot enabled", "disable": "bot disabled"}


def render_users(result: object, args: Mapping[str, object]) -> str:
    """``list``: an aligned table; the other actions: one line about the user."""
    if not isinstance(result, dict):
        return render_generic(result, args)
    users = result.get("users")
    if isinstance(users, list):
        table = [["USER", "OWNER", "PROFILE", "SLIP%", "MAX TRADE $", "MAX LOSS $", "MAX POS%", "BOT",
                  "VAULT"]]
        for u in users:
            if isinstance(u, dict):
                table.append([_cell(u.get(k)) for k in (
                    "user_id", "owner", "risk_profile", "slippage_pct", "max_trade_usd", "max_daily_loss_usd",
                    "effective_max_position_pct", "bot_enabled", "vault_address")])
        widths = [max(len(row[c]) for row in table) for c in range(len(table[0]))]
        lines = ["  ".join(cell.ljust(widths[c]) for c, cell in enumerate(row)).rstrip() for row in table]
        return "\n".join([f"{len(table) - 1} user(s)", *lines])
    user = result.get("user")
    if isinstance(user, dict):
        return _line(_VERBS.get(str(result.get("action")), "done"), user)
    return render_generic(result, args)


CTL: Final[tuple[CtlCommand, ...]] = (
    CtlCommand(
        "users",
        "enrol users and switch their bot: users add|list|set|enable|disable [owner]",
        (CtlArgument("action", "add, list, set, enable or disable"),
         CtlArgument("owner", "the user's wallet (base58, the vault's owner) or user id", optional=True)),
        render_users,
        (CtlOption("--risk-profile", "risk_profile", "add/set: the risk profile", kind=str,
                   choices=("conservative", "balanced", "aggressive")),
         CtlOption("--max-trade-usd", "max_trade_usd", "add/set: the largest single trade, USD", kind=float),
         CtlOption("--slippage-pct", "slippage_pct", "add/set: slippage tolerance, percent (hard cap 5)",
                   kind=float),
         CtlOption("--max-daily-loss-usd", "max_daily_loss_usd",
                   "set: stop new trades after this loss in a day, USD", kind=float),
         CtlOption("--max-position-pct", "max_position_pct", "set: the largest share of the vault one token"
                   " may take, percent", kind=float),
         CtlOption("--reason", "reason", "disable: why (kept with the user)", kind=str)),
    ),
)
