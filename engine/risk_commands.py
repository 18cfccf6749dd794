"""``xorj ctl kill-switch on|off [--user U] [--reason R]`` and ``xorj ctl breakers``, and the wiring
of the kill switches and trading breakers from the engine's config and its Redis gateway.

Owns: the two control-socket commands (`risk_commands(store, switches, breakers, resolve_user)`,
merged by the node into its command table), their ``xorj ctl`` side (`CTL`, with renderers),
`breaker_settings(config)` (the one place the ``breaker_*`` settings become `BreakerSettings`) and
`kill_switch_mirror(redis)` (the Redis gateway as the kill switches' mirror transport, with the
gateway's `RedisError` as "unavailable"). It lives in `engine` because `actors` never imports
`engine`.

Failure it contains: a bad state, a missing / empty / overlong reason, an unknown user, a database
that is down -- each becomes a `CommandError`, one line to the operator, and nothing changes. A
Redis outage is not a failure of the command: Postgres holds the switch, the mirror is fan-out.

May import: the standard library, `actors`, `sql.errors`, `engine.control_socket`,
`engine.ctl_spec`, `engine.config`, `engine.redis_gateway`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Final

from actors.kill_switches import (
    GLOBAL,
    MAX_REASON_CHARS,
    InvalidKillSwitch,
    KillSwitches,
    KillSwitchMirror,
    KillSwitchStore,
    check_reason,
    user_scope,
)
from actors.trading_breakers import BreakerSettings, TradingBreakers
from engine.config import Config
from engine.control_socket import CommandError, CommandSpec
from engine.ctl_spec import CtlArgument, CtlCommand, CtlOption, render_generic
from engine.redis_gateway import RedisError, RedisGateway
from sql.errors import DatabaseError

__all__ = ["CTL", "breaker_settings", "kill_switch_mirror", "render_breakers", "render_kill_switch",
           "risk_commands"]

_STATES: Final = {"on": True, "off": False}

ResolveUser = Callable[[str], Awaitable[str | None]]


def breaker_settings(config: Config) -> BreakerSettings:
    return BreakerSettings(
        consecutive_failures=config.breaker_consecutive_failures,
        failure_rate_pct=config.breaker_failure_rate_pct, min_calls=config.breaker_min_calls,
        window_s=config.breaker_window_seconds, recovery_s=config.breaker_recovery_seconds)


def kill_switch_mirror(redis: RedisGateway, *, timeout_s: float = 2.0) -> KillSwitchMirror:
    """The global kill switch's Redis mirror over the node's gateway (any `RedisError`: stale mirror)."""
    return KillSwitchMirror(redis, unavailable=(RedisError,), timeout_s=timeout_s)


def risk_commands(
    store: KillSwitchStore, switches: KillSwitches, breakers: TradingBreakers, resolve_user: ResolveUser
) -> dict[str, CommandSpec]:
    """``resolve_user(text)``: the user id for a user id or an owner's wallet address, None if no
    such user; it bounds its own database call and may raise `DatabaseError`."""

    async def kill_switch(args: Mapping[str, object]) -> object:
        state, user, reason = args["state"], args.get("user"), args.get("reason")
        assert isinstance(state, str) and isinstance(user, str | None) and isinstance(reason, str | None)
        if state not in _STATES:
            raise CommandError(f"kill-switch: state must be 'on' or 'off', got {state!r}")
        engaged = _STATES[state]
        label = f"kill-switch {state}"
        if engaged and (reason is None or not reason.strip()):
            raise CommandError(f"{label}: --reason is required (say why trading must stop)")
        try:
            check_reason(reason, engaged=engaged)
        except InvalidKillSwitch as exc:
            raise CommandError(f"{label}: {exc}") from None
        if reason is not None and not reason.strip():
            raise CommandError(f"{label}: --reason must not be empty")
        scope, user_id = GLOBAL, None
        try:
            if user is not None:
                if not user.strip():
                    raise CommandError(f"{label}: --user must name a user id or an owner's wallet address")
                user_id = await resolve_user(user.strip())
                if user_id is None:
                    raise CommandError(f"{label}: unknown user {user.strip()!r} "
                                       "(give a user id or the owner's wallet address)")
                scope = user_scope(user_id)
            new = await switches.set(store, scope, engaged, reason)
        except DatabaseError as exc:
            raise CommandError(f"{label}: database: {exc} (nothing changed)") from None
        except InvalidKillSwitch as exc:
            raise CommandError(f"{label}: {exc}") from None
        return {"scope": scope, "user_id": user_id, **new.as_dict(),
                "global_engaged": switches.global_engaged()}

    async def breakers_(_args: Mapping[str, object]) -> object:
        states = breakers.states()
        return {"breakers": {name: state.value for name, state in states.items()},
                "open": sorted(name for name, state in states.items() if state.value == "open"),
                "kill_switches": switches.snapshot()}

    return {
        "kill-switch": CommandSpec(
            kill_switch, required={"state": str}, optional={"user": str, "reason": str},
            help="kill-switch on|off [--user U] [--reason R]: stop or resume trading"),
        "breakers": CommandSpec(
            breakers_, help="the trading circuit breakers and kill switches, as this node sees them"),
    }


def render_kill_switch(result: object, args: Mapping[str, object]) -> str:
    if not isinstance(result, dict) or "engaged" not in result:
        return render_generic(result, args)
    what = ("global kill switch" if result.get("scope") == GLOBAL
            else f"kill switch of user {result.get('user_id')}")
    if result["engaged"]:
        return f"{what} ENGAGED: {result.get('reason')} (since {result.get('updated_at')})"
    return f"{what} released (at {result.get('updated_at')})"


def render_breakers(result: object, args: Mapping[str, object]) -> str:
    if not isinstance(result, dict) or not isinstance(result.get("breakers"), dict):
        return render_generic(result, args)
    states: dict[str, object] = result["breakers"]
    width = max((len(name) for name in states), default=0)
    lines = [f"{name.ljust(width)}  {state}" for name, state in states.items()]
    switches = result.get("kill_switches")
    if isinstance(switches, dict):
        engaged = [f"{scope} ({s.get('reason')})" for scope, s in switches.items()
                   if isinstance(s, dict) and s.get("engaged")]
        lines.append("kill switches engaged: " + (", ".join(engaged) if engaged else "none"))
    return "\n".join(lines)


CTL: Final[tuple[CtlCommand, ...]] = (
    CtlCommand(
        "kill-switch",
        "engage (on) or release (off) the global kill switch, or one user's with --user",
        (CtlArgument("state", "on | off"),),
        render_kill_switch,
        (CtlOption("--user", "user", "a user id or the owner's wallet address (default: global)", kind=str),
         CtlOption("--reason", "reason", f"why (required with on; at most {MAX_REASON_CHARS} characters)",
                   kind=str)),
    ),
    CtlCommand("breakers", "show the trading circuit breakers and engaged kill switches",
               render=render_breakers),
)
