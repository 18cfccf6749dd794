"""The engine's one configuration loader.

Owns: every setting the process reads at start-up, where it comes from (an optional TOML file,
then environment variables, which win), how each is parsed and validated, and how a config is
shown without its secrets.

Failure it contains: a bad or missing setting. It stops start-up with ONE line that names the
setting and the problem (``config error: METRICS_PORT: expected an integer 1-65535, got 'abc'``)
instead of a traceback deep inside some actor minutes later. Values that may carry credentials
(URLs) are redacted in that line, in ``repr()`` and in ``as_public_dict()``.

Adding a setting is one line in ``Config``: a typed attribute whose ``attrs.field`` metadata is a
``setting(parser, default)``. The environment name is the attribute name upper-cased; the TOML key
is the attribute name. Parsers accept the raw environment string or the native TOML value.

An empty environment variable counts as unset (compose files and systemd units often write
``DATABASE_URL=``). Unknown ``XORJ_*`` environment variables are ignored; unknown TOML keys are an
error, because a typo in a file the operator wrote should not be silently dropped.

May import: the standard library and attrs only.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final, Literal
from urllib.parse import urlsplit, urlunsplit

import attrs

__all__ = ["Config", "ConfigError", "load_config", "redact_url"]

_SPEC_KEY: Final = "xorj_setting"
_LOG_LEVELS: Final = ("DEBUG", "INFO", "WARNING", "ERROR")
_MAX_SHOWN_VALUE: Final = 80


class ConfigError(Exception):
    """A setting is missing, malformed or inconsistent. ``str()`` is one operator-facing line."""

    def __init__(self, name: str, problem: str) -> None:
        super().__init__(name, problem)
        self.name = name
        self.problem = problem

    def __str__(self) -> str:
        return f"config error: {self.name}: {self.problem}"


class _Invalid(Exception):
    """Raised by a parser; ``load_config`` adds the setting's name and re-raises as ConfigError."""


# ---------------------------------------------------------------------------------------------
# Redaction


def redact_url(url: str) -> str:
    """``postgresql://xorj:secret@host/db`` -> ``postgresql://xorj:***@host/db``; other text unchanged."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable URL>"
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def _shown(raw: object, *, secret: bool) -> str:
    """How a rejected raw value appears in an error line: repr'd, redacted, truncated."""
    text = redact_url(raw) if secret and isinstance(raw, str) else raw
    shown = repr(text)
    if len(shown) > _MAX_SHOWN_VALUE:
        shown = shown[: _MAX_SHOWN_VALUE - 4] + "...'"
    return shown


# ---------------------------------------------------------------------------------------------
# Parsers: raw env string or TOML value -> typed value, raising _Invalid with the problem.

Parser = Callable[[object], object]


def _as_text(raw: object, expected: str) -> str:
    if not isinstance(raw, str):
        raise _Invalid(f"expected {expected}, got {_shown(raw, secret=False)}")
    return raw.strip()


def integer(low: int, high: int) -> Parser:
    def parse(raw: object) -> int:
        expected = f"an integer {low}-{high}"
        if isinstance(raw, int) and not isinstance(raw, bool):
            value = raw
        elif isinstance(raw, str):
            try:
                value = int(raw.strip())
            except ValueError:
                raise _Invalid(f"expected {expected}, got {_shown(raw, secret=False)}") from None
        else:
            raise _Invalid(f"expected {expected}, got {_shown(raw, secret=False)}")
        if not low <= value <= high:
            raise _Invalid(f"expected {expected}, got {value}")
        return value

    return parse


def positive(unit: str) -> Parser:
    """A finite number above zero; ``unit`` names it in the error ("seconds", "percent", "USD")."""

    def parse(raw: object) -> float:
        expected = f"a positive number of {unit}"
        if isinstance(raw, int | float) and not isinstance(raw, bool):
            value = float(raw)
        elif isinstance(raw, str):
            try:
                value = float(raw.strip())
            except ValueError:
                raise _Invalid(f"expected {expected}, got {_shown(raw, secret=False)}") from None
        else:
            raise _Invalid(f"expected {expected}, got {_shown(raw, secret=False)}")
        if not (math.isfinite(value) and value > 0):
            raise _Invalid(f"expected {expected}, got {_shown(raw, secret=False)}")
        return value

    return parse


positive_float = positive("seconds")
_PERCENT = positive("percent")
_USD = positive("USD")


_TRUE: Final = frozenset({"1", "true", "yes", "on"})
_FALSE: Final = frozenset({"0", "false", "no", "off"})


def boolean(raw: object) -> bool:
    if isinstance(raw, bool):
        return raw
    text = _as_text(raw, "a boolean (1/0, true/false, yes/no)").lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise _Invalid(f"expected a boolean (1/0, true/false, yes/no), got {_shown(raw, secret=False)}")


def choice(*allowed: str, case_insensitive: bool = False) -> Parser:
    def parse(raw: object) -> str:
        expected = "one of " + "|".join(allowed)
        text = _as_text(raw, expected)
        key = text.upper() if case_insensitive else text
        for option in allowed:
            if key == (option.upper() if case_insensitive else option):
                return option
        raise _Invalid(f"expected {expected}, got {_shown(raw, secret=False)}")

    return parse


def url(*schemes: str) -> Parser:
    def parse(raw: object) -> str:
        expected = "a URL with scheme " + "|".join(f"{s}://" for s in schemes)
        text = _as_text(raw, expected)
        try:
            parts = urlsplit(text)
            parts.port  # noqa: B018 -- property raises ValueError on a malformed port
        except ValueError:
            raise _Invalid(f"expected {expected}, got {_shown(raw, secret=True)}") from None
        if parts.scheme.lower() not in schemes or not parts.hostname:
            raise _Invalid(f"expected {expected}, got {_shown(raw, secret=True)}")
        return text

    return parse


_BASE58: Final = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def _is_pubkey(candidate: str) -> bool:
    """A base58 string that decodes to exactly 32 bytes (a Solana public key)."""
    if not 32 <= len(candidate) <= 44 or any(c not in _BASE58 for c in candidate):
        return False
    number = 0
    for c in candidate:
        number = number * 58 + _BASE58.index(c)
    zeros = len(candidate) - len(candidate.lstrip("1"))
    return zeros + (number.bit_length() + 7) // 8 == 32


def pubkeys(raw: object) -> tuple[str, ...]:
    """Comma-separated base58 public keys (a TOML list of strings also works); empty is allowed."""
    items = raw if isinstance(raw, list) else _as_text(raw, "comma-separated base58 public keys").split(",")
    keys: list[str] = []
    for item in items:
        key = item.strip() if isinstance(item, str) else ""
        if not key and isinstance(item, str):
            continue
        if not _is_pubkey(key):
            raise _Invalid(f"expected base58 public keys, got {_shown(item, secret=False)}")
        if key not in keys:
            keys.append(key)
    return tuple(keys)


def text(raw: object) -> str:
    value = _as_text(raw, "a string")
    if not value:
        raise _Invalid("must not be empty")
    return value


def path(raw: object) -> Path:
    return Path(_as_text(raw, "a path")).expanduser()


@attrs.frozen
class _Setting:
    parse: Parser
    # A value, or a function of the settings resolved so far (in field order) -> value.
    default: object
    secret: bool


def setting(parse: Parser, default: object = None, *, secret: bool = False) -> dict[str, _Setting]:
    """Field metadata declaring how one setting is parsed; use as ``attrs.field(metadata=...)``."""
    return {_SPEC_KEY: _Setting(parse, default, secret)}


def _default_home(_: Mapping[str, Any]) -> Path:
    return Path("~/.xorj").expanduser()


def _default_control_socket(resolved: Mapping[str, Any]) -> Path:
    home: Path = resolved["xorj_home"]
    return home / "control.sock"


_PORT = integer(1, 65535)
_PORT_OR_EPHEMERAL = integer(0, 65535)
_POOL_SIZE = integer(1, 1000)
_POSTGRES_URL = url("postgres", "postgresql")
_REDIS_URL = url("redis", "rediss")
_HTTP_URL = url("http", "https")
_MAINNET_USDC: Final = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"


# ---------------------------------------------------------------------------------------------


@attrs.frozen(repr=False)
class Config:
    """Every setting of one engine process. Build it with ``load_config``; it is immutable."""

    database_url: str | None = attrs.field(metadata=setting(_POSTGRES_URL, None, secret=True))
    database_pool_min: int = attrs.field(metadata=setting(_POOL_SIZE, 1))
    database_pool_max: int = attrs.field(metadata=setting(_POOL_SIZE, 10))
    redis_url: str | None = attrs.field(metadata=setting(_REDIS_URL, None, secret=True))
    solana_rpc_url: str | None = attrs.field(metadata=setting(_HTTP_URL, None, secret=True))
    solana_rpc_backup_url: str | None = attrs.field(metadata=setting(_HTTP_URL, None, secret=True))
    log_level: str = attrs.field(metadata=setting(choice(*_LOG_LEVELS, case_insensitive=True), "INFO"))
    log_format: Literal["text", "json"] = attrs.field(metadata=setting(choice("text", "json"), "text"))
    metrics_host: str = attrs.field(metadata=setting(text, "127.0.0.1"))
    metrics_port: int = attrs.field(metadata=setting(_PORT_OR_EPHEMERAL, 9090))
    xorj_home: Path = attrs.field(metadata=setting(path, _default_home))
    xorj_control_socket: Path = attrs.field(metadata=setting(path, _default_control_socket))
    xorj_fault_injection: bool = attrs.field(metadata=setting(boolean, False))
    shutdown_timeout_seconds: float = attrs.field(metadata=setting(positive_float, 10.0))
    embedded_postgres_port: int | None = attrs.field(metadata=setting(_PORT, None))
    embedded_redis_port: int | None = attrs.field(metadata=setting(_PORT, None))
    # Requests per second to the RPC provider (a batch of n counts n); unset: 40 for a configured
    # provider, 2000 for the embedded local chain, which has no quota.
    solana_rpc_rate_per_s: float | None = attrs.field(metadata=setting(positive_float, None))
    localnet_rpc_port: int | None = attrs.field(metadata=setting(_PORT, None))
    localnet_price_port: int | None = attrs.field(metadata=setting(_PORT, None))
    localnet_seed: int = attrs.field(metadata=setting(integer(0, 2**31 - 1), 7))
    scoring_interval_seconds: float = attrs.field(metadata=setting(positive_float, 300.0))
    xorj_score_algorithm: str = attrs.field(metadata=setting(choice("v1", "v2"), "v1"))
    scoring_window_days: int = attrs.field(metadata=setting(integer(1, 3650), 90))
    tracked_wallets: tuple[str, ...] = attrs.field(metadata=setting(pubkeys, ()))
    stablecoin_mints: tuple[str, ...] = attrs.field(metadata=setting(pubkeys, (_MAINNET_USDC,)))
    # -- copy trading (issue 6) -------------------------------------------------------------
    # The bot's keypair file (mode 0600); unset: $XORJ_HOME/bot-keypair.json, or in embedded mode
    # the local chain's bot key. Never logged or exported.
    bot_keypair_path: Path | None = attrs.field(metadata=setting(path, None))
    # A Jupiter Price API v3 compatible endpoint; unset: the local chain's (embedded mode).
    price_api_url: str | None = attrs.field(metadata=setting(_HTTP_URL, None, secret=True))
    price_poll_seconds: float = attrs.field(metadata=setting(positive_float, 2.0))
    price_stale_seconds: float = attrs.field(metadata=setting(positive_float, 30.0))
    # A tick that moves a price by more than this percent from the last good one is rejected.
    price_max_jump_pct: float = attrs.field(metadata=setting(_PERCENT, 50.0))
    # A price move past this percent (since the executor's last plan) triggers a re-plan.
    price_move_trigger_pct: float = attrs.field(metadata=setting(_PERCENT, 2.0))
    executor_check_seconds: float = attrs.field(metadata=setting(positive_float, 30.0))
    trader_poll_seconds: float = attrs.field(metadata=setting(positive_float, 2.0))
    min_trade_usd: float = attrs.field(metadata=setting(_USD, 1.0))
    # Per-user default of the largest single trade, when `users add` gives none.
    default_max_trade_usd: float = attrs.field(metadata=setting(_USD, 100.0))
    slippage_retries: int = attrs.field(metadata=setting(integer(0, 10), 2))
    # Breakers: open after N consecutive failures, or when the failure rate over the last
    # `_window` outcomes (within `breaker_window_seconds`) reaches the rate; stay open this long.
    breaker_consecutive_failures: int = attrs.field(metadata=setting(integer(1, 1000), 3))
    breaker_failure_rate_pct: float = attrs.field(metadata=setting(_PERCENT, 80.0))
    breaker_min_calls: int = attrs.field(metadata=setting(integer(1, 1000), 5))
    breaker_window_seconds: float = attrs.field(metadata=setting(positive_float, 600.0))
    breaker_recovery_seconds: float = attrs.field(metadata=setting(positive_float, 1800.0))
    confirm_timeout_seconds: float = attrs.field(metadata=setting(positive_float, 90.0))
    alert_webhook_url: str | None = attrs.field(metadata=setting(_HTTP_URL, None, secret=True))
    alert_dedup_seconds: float = attrs.field(metadata=setting(positive_float, 300.0))
    # A running local chain's manifest (programs, mints, pools, demo users, bot key) to trade on
    # when SOLANA_RPC_URL points at that chain (possibly through a fault proxy): what the chaos
    # harness uses. Embedded mode reads the manifest of the chain it starts.
    localnet_manifest: Path | None = attrs.field(metadata=setting(path, None))
    # With a local chain (embedded, or LOCALNET_MANIFEST): enrol and enable its demo users at start.
    enroll_demo_users: bool = attrs.field(metadata=setting(boolean, True))
    # Fault injection only (refused without XORJ_FAULT_INJECTION=1): SIGKILL the engine the first
    # time a trade reaches this point of its lifecycle -- what the crash-safety test drives.
    xorj_crash_at: str | None = attrs.field(metadata=setting(
        choice("before_persist", "after_persist", "after_send", "after_landing"), None))

    def as_public_dict(self) -> dict[str, object]:
        """Every setting by its environment name, JSON-friendly, with URL passwords redacted."""
        public: dict[str, object] = {}
        for field in attrs.fields(Config):
            value = getattr(self, field.name)
            if isinstance(value, Path):
                value = str(value)
            elif isinstance(value, str) and _spec(field).secret:
                value = redact_url(value)
            public[field.name.upper()] = value
        return public

    def __repr__(self) -> str:
        body = ", ".join(f"{k.lower()}={v!r}" for k, v in self.as_public_dict().items())
        return f"Config({body})"


def _spec(field: attrs.Attribute[Any]) -> _Setting:
    spec: _Setting = field.metadata[_SPEC_KEY]
    return spec


def _check_consistency(values: Mapping[str, Any]) -> None:
    """Rules that span settings. Raises ConfigError naming the setting an operator should fix."""
    if values["database_pool_min"] > values["database_pool_max"]:
        raise ConfigError(
            "DATABASE_POOL_MIN",
            f"must be <= DATABASE_POOL_MAX ({values['database_pool_max']}), "
            f"got {values['database_pool_min']}",
        )
    if values["breaker_failure_rate_pct"] > 100:
        raise ConfigError("BREAKER_FAILURE_RATE_PCT",
                          f"must be at most 100, got {values['breaker_failure_rate_pct']}")
    if values["xorj_crash_at"] is not None and not values["xorj_fault_injection"]:
        raise ConfigError("XORJ_CRASH_AT", "is a fault injection: it needs XORJ_FAULT_INJECTION=1")


def _read_toml(toml_path: Path) -> dict[str, object]:
    name = str(toml_path)
    try:
        with toml_path.open("rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(name, "config file not found") from None
    except OSError as e:
        raise ConfigError(name, f"cannot read config file: {e.strerror or e}") from None
    except tomllib.TOMLDecodeError as e:
        problem = " ".join(str(e).split())
        raise ConfigError(name, f"cannot parse TOML: {problem}") from None
    known = {field.name for field in attrs.fields(Config)}
    for key in data:
        if key not in known:
            raise ConfigError(name, f"unknown key {key!r} (keys are lowercase setting names)")
    return data


def load_config(environ: Mapping[str, str], toml_path: Path | None = None) -> Config:
    """Build the Config from an optional TOML file (``toml_path``, else ``$XORJ_CONFIG``) and
    ``environ``, which wins. Raises ConfigError on the first bad setting, in field order."""
    if toml_path is None and environ.get("XORJ_CONFIG", "").strip():
        toml_path = Path(environ["XORJ_CONFIG"].strip()).expanduser()
    from_file = _read_toml(toml_path) if toml_path is not None else {}

    resolved: dict[str, Any] = {}
    for field in attrs.fields(Config):
        spec = _spec(field)
        env_name = field.name.upper()
        raw: object
        where = ""
        if environ.get(env_name, "").strip():
            raw = environ[env_name]
        elif field.name in from_file:
            raw, where = from_file[field.name], f" (in {toml_path})"
        else:
            default = spec.default
            resolved[field.name] = default(resolved) if callable(default) else default
            continue
        try:
            resolved[field.name] = spec.parse(raw)
        except _Invalid as e:
            raise ConfigError(env_name, f"{e}{where}") from None
    _check_consistency(resolved)
    return Config(**resolved)
