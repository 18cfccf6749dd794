"""engine.config: one loader, TOML then environment, one clear line per bad setting."""

from __future__ import annotations

from pathlib import Path

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.config import Config, ConfigError, load_config, redact_url

# One bad value per setting. Strings go through the environment; other values through TOML,
# because an environment variable can only be a (non-empty) string.
BAD_VALUES: dict[str, object] = {
    "DATABASE_URL": "mysql://xorj:hunter2@db/xorj",
    "DATABASE_POOL_MIN": "zero",
    "DATABASE_POOL_MAX": "0",
    "REDIS_URL": "http://cache:6379",
    "SOLANA_RPC_URL": "ws://rpc.example",
    "SOLANA_RPC_BACKUP_URL": "not a url",
    "LOG_LEVEL": "LOUD",
    "LOG_FORMAT": "xml",
    "METRICS_HOST": "",
    "METRICS_PORT": "abc",
    "XORJ_HOME": 5,
    "XORJ_CONTROL_SOCKET": ["a"],
    "XORJ_FAULT_INJECTION": "maybe",
    "SHUTDOWN_TIMEOUT_SECONDS": "-3",
    "EMBEDDED_POSTGRES_PORT": "70000",
    "EMBEDDED_REDIS_PORT": "1.5",
    "SOLANA_RPC_RATE_PER_S": "0",
    "LOCALNET_RPC_PORT": "0",
    "LOCALNET_PRICE_PORT": "port",
    "LOCALNET_SEED": "-1",
    "SCORING_INTERVAL_SECONDS": "0",
    "XORJ_SCORE_ALGORITHM": "v3",
    "SCORING_WINDOW_DAYS": "0",
    "TRACKED_WALLETS": "9xQeWvG816bUx9EPjHmaT23yvVM2ZWbrrpZb9PusVFin,not-a-wallet",
    "STABLECOIN_MINTS": "0OIl",
    "BOT_KEYPAIR_PATH": 7,
    "PRICE_API_URL": "ftp://prices.example",
    "PRICE_POLL_SECONDS": "0",
    "PRICE_STALE_SECONDS": "-1",
    "PRICE_MAX_JUMP_PCT": "-5",
    "PRICE_MOVE_TRIGGER_PCT": "0",
    "EXECUTOR_CHECK_SECONDS": "never",
    "TRADER_POLL_SECONDS": "0",
    "MIN_TRADE_USD": "-1",
    "DEFAULT_MAX_TRADE_USD": "lots",
    "SLIPPAGE_RETRIES": "11",
    "BREAKER_CONSECUTIVE_FAILURES": "0",
    "BREAKER_FAILURE_RATE_PCT": "0",
    "BREAKER_MIN_CALLS": "1001",
    "BREAKER_WINDOW_SECONDS": "0",
    "BREAKER_RECOVERY_SECONDS": "-5",
    "CONFIRM_TIMEOUT_SECONDS": "0",
    "ALERT_WEBHOOK_URL": "not a url",
    "ALERT_DEDUP_SECONDS": "0",
    "LOCALNET_MANIFEST": 3,
    "ENROLL_DEMO_USERS": "perhaps",
    "XORJ_CRASH_AT": "somewhere",
}


def _toml_literal(value: object) -> str:
    if isinstance(value, str):
        return '"' + value.replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml_literal(v) for v in value) + "]"
    return str(value).lower() if isinstance(value, bool) else str(value)


def _write_toml(tmp_path: Path, settings: dict[str, object]) -> Path:
    path = tmp_path / "xorj.toml"
    path.write_text("".join(f"{k} = {_toml_literal(v)}\n" for k, v in settings.items()))
    return path


def test_every_setting_has_a_bad_value_case() -> None:
    assert set(BAD_VALUES) == {f.name.upper() for f in attrs.fields(Config)}


@pytest.mark.parametrize("name", sorted(BAD_VALUES))
def test_a_bad_value_stops_loading_with_one_line_naming_the_setting(name: str, tmp_path: Path) -> None:
    value = BAD_VALUES[name]
    with pytest.raises(ConfigError) as raised:
        if isinstance(value, str) and value:
            load_config({name: value})
        else:
            load_config({}, _write_toml(tmp_path, {name.lower(): value}))
    message = str(raised.value)
    assert raised.value.name == name
    assert message.startswith(f"config error: {name}: ")
    assert "\n" not in message
    assert "hunter2" not in message


def test_the_documented_message_for_a_bad_port() -> None:
    with pytest.raises(ConfigError) as raised:
        load_config({"METRICS_PORT": "abc"})
    assert str(raised.value) == "config error: METRICS_PORT: expected an integer 0-65535, got 'abc'"
    assert raised.value.problem == "expected an integer 0-65535, got 'abc'"


def test_defaults_with_nothing_configured() -> None:
    config = load_config({})
    assert config.database_url is None and config.redis_url is None and config.solana_rpc_url is None
    assert (config.database_pool_min, config.database_pool_max) == (1, 10)
    assert (config.log_level, config.log_format) == ("INFO", "text")
    assert (config.metrics_host, config.metrics_port) == ("127.0.0.1", 9090)
    assert config.xorj_home == Path("~/.xorj").expanduser()
    assert config.xorj_control_socket == config.xorj_home / "control.sock"
    assert config.xorj_fault_injection is False
    assert config.shutdown_timeout_seconds == 10.0
    assert config.embedded_postgres_port is None and config.embedded_redis_port is None


def test_good_values_are_parsed_and_normalised() -> None:
    config = load_config(
        {
            "DATABASE_URL": "postgres://xorj@db:5432/xorj",
            "DATABASE_POOL_MIN": "2",
            "DATABASE_POOL_MAX": " 4 ",
            "REDIS_URL": "rediss://cache:6380/0",
            "SOLANA_RPC_URL": "https://rpc.example",
            "SOLANA_RPC_BACKUP_URL": "http://10.0.0.2:8899",
            "LOG_LEVEL": "debug",
            "LOG_FORMAT": "json",
            "METRICS_HOST": "0.0.0.0",
            "METRICS_PORT": "0",
            "XORJ_HOME": "/srv/xorj",
            "XORJ_FAULT_INJECTION": "yes",
            "SHUTDOWN_TIMEOUT_SECONDS": "2.5",
            "EMBEDDED_POSTGRES_PORT": "5433",
            "EMBEDDED_REDIS_PORT": "6380",
        }
    )
    assert config.log_level == "DEBUG" and config.log_format == "json"
    assert config.database_pool_max == 4 and config.metrics_port == 0
    assert config.xorj_control_socket == Path("/srv/xorj/control.sock")
    assert config.xorj_fault_injection is True
    assert config.shutdown_timeout_seconds == 2.5
    assert (config.embedded_postgres_port, config.embedded_redis_port) == (5433, 6380)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("1", True), ("0", False), ("TRUE", True), ("false", False), ("Yes", True), ("no", False)],
)
def test_fault_injection_accepts_the_usual_boolean_spellings(raw: str, expected: bool) -> None:
    assert load_config({"XORJ_FAULT_INJECTION": raw}).xorj_fault_injection is expected


def test_pool_min_above_max_is_refused_naming_min() -> None:
    with pytest.raises(ConfigError) as raised:
        load_config({"DATABASE_POOL_MIN": "8", "DATABASE_POOL_MAX": "4"})
    assert str(raised.value) == "config error: DATABASE_POOL_MIN: must be <= DATABASE_POOL_MAX (4), got 8"


def test_environment_overrides_the_toml_file(tmp_path: Path) -> None:
    toml = _write_toml(tmp_path, {"metrics_port": 9100, "log_level": "warning", "xorj_fault_injection": True})
    config = load_config({"METRICS_PORT": "9200"}, toml)
    assert config.metrics_port == 9200
    assert config.log_level == "WARNING"
    assert config.xorj_fault_injection is True


def test_the_toml_file_can_come_from_xorj_config(tmp_path: Path) -> None:
    toml = _write_toml(tmp_path, {"metrics_port": 9100})
    assert load_config({"XORJ_CONFIG": str(toml)}).metrics_port == 9100


def test_a_bad_value_in_the_file_names_the_setting_and_the_file(tmp_path: Path) -> None:
    toml = _write_toml(tmp_path, {"metrics_port": True})
    with pytest.raises(ConfigError) as raised:
        load_config({}, toml)
    assert (
        str(raised.value) == f"config error: METRICS_PORT: expected an integer 0-65535, got True (in {toml})"
    )


def test_an_unknown_toml_key_is_an_error_naming_the_key(tmp_path: Path) -> None:
    toml = _write_toml(tmp_path, {"metrics_prot": 9100})
    with pytest.raises(ConfigError) as raised:
        load_config({}, toml)
    assert raised.value.name == str(toml)
    assert "'metrics_prot'" in str(raised.value)


def test_a_missing_file_is_an_error_naming_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError) as raised:
        load_config({}, missing)
    assert str(raised.value) == f"config error: {missing}: config file not found"


def test_an_unparsable_file_is_one_line_naming_the_file(tmp_path: Path) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text("metrics_port = \n[[[\n")
    with pytest.raises(ConfigError) as raised:
        load_config({}, broken)
    assert str(raised.value).startswith(f"config error: {broken}: cannot parse TOML: ")
    assert "\n" not in str(raised.value)


def test_unknown_xorj_environment_variables_are_ignored() -> None:
    assert load_config({"XORJ_SOMETHING_NEW": "x", "HOME": "/root"}).metrics_port == 9090


def test_an_empty_environment_variable_counts_as_unset(tmp_path: Path) -> None:
    toml = _write_toml(tmp_path, {"metrics_port": 9100})
    config = load_config({"DATABASE_URL": "", "METRICS_PORT": " "}, toml)
    assert config.database_url is None
    assert config.metrics_port == 9100


def test_passwords_never_appear_in_repr_str_or_the_public_dict() -> None:
    config = load_config(
        {
            "DATABASE_URL": "postgresql://xorj:s3cret@db.internal:5432/xorj",
            "REDIS_URL": "redis://:r3dis@cache:6379/0",
            "SOLANA_RPC_URL": "https://user:rpcpass@rpc.example/",
        }
    )
    for shown in (repr(config), str(config), str(config.as_public_dict())):
        assert "s3cret" not in shown and "r3dis" not in shown and "rpcpass" not in shown
    public = config.as_public_dict()
    assert public["DATABASE_URL"] == "postgresql://xorj:***@db.internal:5432/xorj"
    assert public["REDIS_URL"] == "redis://:***@cache:6379/0"
    assert config.database_url == "postgresql://xorj:s3cret@db.internal:5432/xorj"


def test_redact_url_leaves_urls_without_a_password_alone() -> None:
    assert redact_url("postgresql://xorj@host/db") == "postgresql://xorj@host/db"
    assert redact_url("postgresql://xorj:p%40ss@host/db") == "postgresql://xorj:***@host/db"


@given(name=st.sampled_from(sorted(BAD_VALUES)), raw=st.text(min_size=1, max_size=40))
def test_any_environment_value_either_loads_or_fails_with_one_line(name: str, raw: str) -> None:
    try:
        load_config({name: raw})
    except ConfigError as e:
        assert e.name == name
        assert str(e).startswith(f"config error: {name}: ")
        assert "\n" not in str(e) and "\r" not in str(e)
