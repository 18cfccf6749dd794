"""Users, the enable check on the real local chain, the bot key file, and ``xorj ctl users``."""

from __future__ import annotations

import argparse
import hashlib
import json
import os
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import trio
from solders.keypair import Keypair
from solders.pubkey import Pubkey

from actors.rpc_client import RetryPolicy, RpcClient, RpcUnavailable, SolanaRpc
from actors.user_store import (
    PROFILE_DEFAULTS,
    AlreadyEnrolled,
    InvalidSetting,
    RiskProfile,
    UnknownUser,
    UserSettings,
    UserStore,
    user_id_for,
    validate_max_daily_loss_usd,
    validate_max_position_pct,
    validate_max_trade_usd,
    validate_owner,
    validate_reason,
    validate_slippage_pct,
)
from actors.vault_check import VaultCheck, check_vault
from contracts.vault_client import VaultClient
from engine import ctl
from engine.bot_key import BotKeyError, bot_key_path, describe_bot_key, load_bot_key
from engine.config import load_config
from engine.control_socket import CommandError, CommandSpec, serve_control_socket
from engine.user_commands import CTL, enroll_demo_users, render_users, user_commands
from tests.trades.conftest import Desk
from tests.users.conftest import Chain, ChainEnabler

OWNER = str(Keypair().pubkey())


def users_spec(store: UserStore, enabler: ChainEnabler) -> CommandSpec:
    return user_commands(store, enabler)["users"]


async def run(spec: CommandSpec, **args: object) -> Any:
    with trio.fail_after(30):
        return await spec.handler(args)


async def refused(spec: CommandSpec, **args: object) -> str:
    with pytest.raises(CommandError) as caught, trio.fail_after(30):
        await spec.handler(args)
    return str(caught.value)


# -- validation ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("check", "value", "field", "problem"), [
    (validate_owner, "not-a-key", "owner", "not a base58 public key"),
    (validate_owner, "O" * 40, "owner", "not a base58 public key"),
    (validate_owner, "1" * 44, "owner", "not a base58 public key"),
    (validate_slippage_pct, 5.01, "slippage_pct", "above the hard cap of 5 %"),
    (validate_slippage_pct, 0, "slippage_pct", "must be above 0"),
    (validate_slippage_pct, -1.0, "slippage_pct", "must be above 0"),
    (validate_slippage_pct, 0.001, "slippage_pct", "at least 0.01"),
    (validate_slippage_pct, float("nan"), "slippage_pct", "finite"),
    (validate_max_trade_usd, 0, "max_trade_usd", "must be above 0 USD"),
    (validate_max_trade_usd, 1e15, "max_trade_usd", "must be below"),
    (validate_max_trade_usd, True, "max_trade_usd", "must be a number"),
    (validate_max_daily_loss_usd, -5, "max_daily_loss_usd", "must be above 0 USD"),
    (validate_max_position_pct, 100.5, "max_position_pct", "above the maximum of 100 %"),
    (validate_reason, "   ", "reason", "must not be empty"),
])
def test_validators_name_the_field_and_the_problem(
    check: Any, value: object, field: str, problem: str
) -> None:
    with pytest.raises(InvalidSetting) as caught:
        check(value)
    assert caught.value.field == field
    assert str(caught.value).startswith(f"{field}: ") and problem in str(caught.value)


def test_profiles_parse_case_insensitively_and_carry_their_defaults() -> None:
    assert RiskProfile.parse("conservative") is RiskProfile.CONSERVATIVE
    assert RiskProfile.parse(" Aggressive ") is RiskProfile.AGGRESSIVE
    with pytest.raises(InvalidSetting, match="risk_profile: unknown profile 'yolo'; use one of conservative"):
        RiskProfile.parse("yolo")
    assert [PROFILE_DEFAULTS[p].slippage_pct for p in RiskProfile] == [Decimal("0.5"), 1, 2]
    assert [PROFILE_DEFAULTS[p].max_position_pct for p in RiskProfile] == [25, 40, 60]
    assert [PROFILE_DEFAULTS[p].max_trader_drawdown_pct for p in RiskProfile] == [20, 35, 100]
    assert validate_slippage_pct(0.1) == Decimal("0.10")  # the float's decimal spelling, not its binary


# -- the store -----------------------------------------------------------------------------------


async def test_store_add_get_set_enable_disable_cycle(store: UserStore) -> None:
    added = await store.add(OWNER, risk_profile="conservative", max_trade_usd=250)
    assert added.user_id == user_id_for(OWNER) == "user-" + hashlib.sha256(OWNER.encode()).hexdigest()[:16]
    assert (added.risk_profile, added.max_trade_usd, added.slippage_pct) == (
        RiskProfile.CONSERVATIVE, Decimal(250), Decimal("0.50"))
    assert added.effective_max_position_pct == 25 and added.effective_max_trader_drawdown_pct == 20
    assert not added.bot_enabled and added.vault_address is None
    assert added.effective_max_trade_usd(Decimal(100)) == 250

    assert await store.get(OWNER) == added == await store.get(added.user_id)
    assert await store.get(str(Keypair().pubkey())) is None

    changed = await store.set(OWNER, max_daily_loss_usd=50.5, max_position_pct=30, max_trade_usd=None)
    assert (changed.max_daily_loss_usd, changed.max_position_pct, changed.max_trade_usd) == (
        Decimal("50.5"), Decimal(30), None)
    assert changed.effective_max_position_pct == 30 and changed.effective_max_trade_usd(Decimal(100)) == 100

    vault = str(Keypair().pubkey())
    enabled = await store.enable(OWNER, vault)
    assert enabled.bot_enabled and enabled.vault_address == vault
    assert [u.owner for u in await store.enabled()] == [OWNER]

    disabled = await store.disable(added.user_id, "operator said so")
    assert not disabled.bot_enabled and disabled.disabled_reason == "operator said so"
    assert disabled.vault_address == vault  # kept: the vault a re-enable will check again
    assert await store.enabled() == []
    assert await store.list() == [disabled]


async def test_adding_an_owner_twice_is_already_enrolled_not_a_second_user(store: UserStore) -> None:
    await store.add(OWNER)
    with pytest.raises(AlreadyEnrolled, match=f"{OWNER} is already enrolled"):
        await store.add(f"  {OWNER} ", risk_profile="aggressive")
    assert [(u.owner, u.risk_profile) for u in await store.list()] == [(OWNER, RiskProfile.BALANCED)]


async def test_slippage_follows_the_profile_unless_customised(store: UserStore) -> None:
    follows, custom = str(Keypair().pubkey()), str(Keypair().pubkey())
    await store.add(follows)
    await store.add(custom, slippage_pct=1.5)
    assert (await store.set(follows, risk_profile="AGGRESSIVE")).slippage_pct == Decimal("2.00")
    assert (await store.set(custom, risk_profile="conservative")).slippage_pct == Decimal("1.50")
    both = await store.set(follows, risk_profile="conservative", slippage_pct=3)
    assert (both.risk_profile, both.slippage_pct) == (RiskProfile.CONSERVATIVE, Decimal("3.00"))


async def test_store_refuses_bad_changes_before_any_sql(store: UserStore) -> None:
    await store.add(OWNER)
    with pytest.raises(InvalidSetting, match="slippage_pct: 7 % is above the hard cap of 5 %"):
        await store.set(OWNER, slippage_pct=7)
    with pytest.raises(InvalidSetting, match="bot_enabled: cannot be set"):
        await store.set(OWNER, bot_enabled=True)
    with pytest.raises(InvalidSetting, match="nothing to change"):
        await store.set(OWNER)
    with pytest.raises(UnknownUser, match="unknown user"):
        await store.set(str(Keypair().pubkey()), max_trade_usd=5)
    with pytest.raises(UnknownUser):
        await store.disable("user-0000000000000000", "why")
    assert (await store.get(OWNER)) == (await store.list())[0]
    assert (await store.get(OWNER)).slippage_pct == Decimal("1.00")  # type: ignore[union-attr]


async def test_enabled_is_one_query_over_many_users(store: UserStore, schema: Any) -> None:
    owners = [str(Keypair().pubkey()) for _ in range(40)]
    for owner in owners:
        await store.add(owner)
    for owner in owners[::3]:
        await store.enable(owner, str(Keypair().pubkey()))
    assert sorted(u.owner for u in await store.enabled()) == sorted(owners[::3])


# -- the vault check on the real chain -----------------------------------------------------------


async def test_check_vault_accepts_a_demo_vault_granting_the_bot(desk: Desk, rpc: RpcClient) -> None:
    check = await check_vault(rpc, desk.vault, desk.owner, desk.bot.pubkey(), timeout=5.0)
    assert check.ok and check.reason is None
    assert check.vault_address == desk.node.manifest["demoUsers"][0]["vault"]


async def test_check_vault_names_each_reason_with_the_vault_pda(
    desk: Desk, rpc: RpcClient, chain: Chain
) -> None:
    bot = desk.bot.pubkey()
    other_bot = Keypair().pubkey()
    no_vault = Keypair().pubkey()
    not_program = Keypair().pubkey()
    await chain.airdrop(desk.vault.vault(not_program), 1)  # a system-owned account at the PDA
    no_bot = (await chain.vault_of(bot=None)).pubkey()
    another = (await chain.vault_of(bot=other_bot)).pubkey()
    inactive = (await chain.vault_of(bot=bot, deactivate=True)).pubkey()
    expected = {
        no_vault: "no vault account at {pda}",
        not_program: f"the account at {{pda}} is not owned by the vault program {desk.vault.program_id}",
        no_bot: f"the vault {{pda}} has granted no bot authority (its owner must grant {bot})",
        another: f"the vault {{pda}} grants another bot authority, {other_bot}, not this engine's bot {bot}",
        inactive: "the vault {pda} is inactive",
    }
    for owner, reason in expected.items():
        check = await check_vault(rpc, desk.vault, owner, bot, timeout=5.0)
        pda = str(desk.vault.vault(owner))
        assert not check.ok and check.vault_address == pda
        assert check.reason is not None and reason.format(pda=pda) in check.reason


class AnsweringRpc(SolanaRpc):
    """Answers getAccountInfo with one fixed JSON-RPC response (the real wire format): an account
    owned by the vault program whose bytes are not a vault, which the real chain cannot hold."""

    def __init__(self, wire: str) -> None:
        self.wire = wire

    async def call(
        self, request: Any, resp_type: Any, *, timeout: float | None = None, retry: bool = True
    ) -> Any:
        return resp_type.from_json(self.wire)


async def test_check_vault_refuses_an_account_it_cannot_decode() -> None:
    vault = VaultClient(Keypair().pubkey())
    owner = Keypair().pubkey()
    wire = json.dumps({"jsonrpc": "2.0", "id": 1, "result": {"context": {"slot": 9}, "value": {
        "lamports": 10**6, "owner": str(vault.program_id), "data": ["AAECAwQFBgcICQ==", "base64"],
        "executable": False, "rentEpoch": 0, "space": 10}}})
    check = await check_vault(AnsweringRpc(wire), vault, owner, Keypair().pubkey(), timeout=5.0)
    assert not check.ok
    assert check.reason is not None and check.reason.startswith(
        f"the account at {vault.vault(owner)} cannot be decoded as a vault: not a Vault")


async def test_check_vault_lets_the_typed_rpc_error_through() -> None:
    with trio.socket.socket() as sock:
        await sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: connections are refused
        async with RpcClient(f"http://127.0.0.1:{port}", default_timeout_s=2.0,
                             retry=RetryPolicy(retries=1, min_s=0.01, max_s=0.02)) as dead:
            with pytest.raises(RpcUnavailable):
                await check_vault(dead, VaultClient(Keypair().pubkey()), Keypair().pubkey(),
                                  Keypair().pubkey(), timeout=2.0)


# -- the users command ---------------------------------------------------------------------------


@pytest.mark.parametrize(("args", "message"), [
    ({"action": "promote", "owner": OWNER}, "users: unknown action 'promote'; use one of add, list, set"),
    ({"action": "add"}, "users add: missing the owner"),
    ({"action": "enable"}, "users enable: missing the owner"),
    ({"action": "add", "owner": "nope"}, "users add: owner: 'nope' is not a base58 public key"),
    ({"action": "add", "owner": OWNER, "risk_profile": "yolo"},
     "users add: risk_profile: unknown profile 'yolo'; use one of conservative, balanced, aggressive"),
    ({"action": "add", "owner": OWNER, "slippage_pct": 5.5},
     "users add: slippage_pct: 5.5 % is above the hard cap of 5 %"),
    ({"action": "add", "owner": OWNER, "slippage_pct": 0}, "users add: slippage_pct: must be above 0 %"),
    ({"action": "add", "owner": OWNER, "max_trade_usd": -3}, "users add: max_trade_usd: must be above 0 USD"),
    ({"action": "add", "owner": OWNER, "reason": "x"}, "users add: --reason does not apply to add"),
    ({"action": "set", "owner": OWNER, "slippage_pct": 1}, f"users set: unknown user '{OWNER}'"),
    ({"action": "enable", "owner": OWNER}, f"users enable: unknown user '{OWNER}'"),
    ({"action": "disable", "owner": "user-0123456789abcdef"},
     "users disable: unknown user 'user-0123456789abcdef'"),
    ({"action": "list", "owner": OWNER}, f"users list: unknown user '{OWNER}'"),
])
async def test_users_command_refuses_bad_input_naming_the_problem(
    store: UserStore, enabler: ChainEnabler, args: dict[str, object], message: str
) -> None:
    assert message in await refused(users_spec(store, enabler), **args)
    assert await store.list() == [] and enabler.enable_calls == []


async def test_users_command_add_list_set_enable_disable(
    store: UserStore, enabler: ChainEnabler, desk: Desk
) -> None:
    users = users_spec(store, enabler)
    owner = str(desk.owner)
    added = await run(users, action="add", owner=owner, risk_profile="aggressive", max_trade_usd=20)
    assert added["user"]["risk_profile"] == "AGGRESSIVE" and added["user"]["slippage_pct"] == 2.0
    assert "users add: " in await refused(users, action="add", owner=owner)  # already enrolled
    assert "already enrolled" in await refused(users, action="add", owner=owner)

    changed = await run(users, action="set", owner=owner, slippage_pct=1.25, max_daily_loss_usd=40,
                        max_position_pct=50)
    assert (changed["user"]["slippage_pct"], changed["user"]["max_daily_loss_usd"],
            changed["user"]["effective_max_position_pct"]) == (1.25, 40.0, 50.0)
    assert "set: --reason does not apply" in await refused(users, action="set", owner=owner, reason="x")

    enabled = await run(users, action="enable", owner=owner)
    vault = desk.node.manifest["demoUsers"][0]["vault"]
    assert enabled["user"]["bot_enabled"] and enabled["user"]["vault_address"] == vault
    assert enabler.running == {owner}
    stored = await store.get(owner)
    assert stored is not None and stored.bot_enabled and stored.vault_address == vault

    listed = await run(users, action="list")
    assert [u["owner"] for u in listed["users"]] == [owner] and listed["users"][0]["bot_enabled"]
    table = render_users(listed, {"action": "list"})
    assert table.splitlines()[0] == "1 user(s)" and "USER" in table and owner in table and vault in table

    disabled = await run(users, action="disable", owner=stored.user_id, reason="holiday")
    assert not disabled["user"]["bot_enabled"] and disabled["user"]["disabled_reason"] == "holiday"
    assert enabler.running == set() and await store.enabled() == []
    line = render_users(disabled, {"action": "disable"})
    assert "\n" not in line and "holiday" in line
    assert line.startswith(f"{owner} ({stored.user_id}) bot disabled")


async def test_enable_is_refused_with_the_on_chain_reason_and_nothing_is_stored(
    store: UserStore, enabler: ChainEnabler, desk: Desk, chain: Chain
) -> None:
    users = users_spec(store, enabler)
    bot = desk.bot.pubkey()
    other_bot = Keypair().pubkey()
    cases = {
        Keypair().pubkey(): "no vault account at",
        (await chain.vault_of(bot=None)).pubkey(): "has granted no bot authority",
        (await chain.vault_of(bot=other_bot)).pubkey(): f"grants another bot authority, {other_bot}",
        (await chain.vault_of(bot=bot, deactivate=True)).pubkey(): "is inactive",
    }
    for owner, reason in cases.items():
        await run(users, action="add", owner=str(owner))
        message = await refused(users, action="enable", owner=str(owner))
        assert message.startswith(f"users enable: refused for {owner}: ") and reason in message
        assert str(desk.vault.vault(owner)) in message
        user = await store.get(str(owner))
        assert user is not None and not user.bot_enabled and user.vault_address is None
    assert enabler.running == set() and len(enabler.enable_calls) == len(cases)


async def test_enable_when_the_chain_cannot_be_asked_says_so_and_stores_nothing(
    store: UserStore, desk: Desk
) -> None:
    with trio.socket.socket() as sock:
        await sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: connections are refused
        async with RpcClient(f"http://127.0.0.1:{port}", default_timeout_s=2.0,
                             retry=RetryPolicy(retries=1, min_s=0.01, max_s=0.02)) as dead:
            enabler = ChainEnabler(dead, desk.vault, desk.bot.pubkey())
            users = users_spec(store, enabler)
            await run(users, action="add", owner=str(desk.owner))
            message = await refused(users, action="enable", owner=str(desk.owner))
    assert message.startswith(f"users enable: cannot check the vault of {desk.owner}: ")
    assert enabler.running == set() and await store.enabled() == []


class UnstorableEnabler(ChainEnabler):
    """Starts the executor, then answers ok with a vault the store refuses: the write after a good
    check fails, as a database outage there would."""

    async def enable(self, user: UserSettings) -> VaultCheck:
        await super().enable(user)
        return VaultCheck(ok=True, vault_address="not-a-vault")


async def test_an_enable_whose_write_fails_stops_the_executor_again(
    store: UserStore, enabler: ChainEnabler, desk: Desk
) -> None:
    unstorable = UnstorableEnabler(enabler.rpc, enabler.vault, enabler.bot)
    users = users_spec(store, unstorable)
    await run(users, action="add", owner=str(desk.owner))
    message = await refused(users, action="enable", owner=str(desk.owner))
    assert message == "users enable: vault_address: 'not-a-vault' is not a base58 public key (length 11)"
    assert unstorable.enable_calls == unstorable.disable_calls == [str(desk.owner)]
    assert unstorable.running == set() and await store.enabled() == []


async def test_enroll_demo_users_is_idempotent_across_restarts(
    store: UserStore, enabler: ChainEnabler, desk: Desk
) -> None:
    manifest = desk.node.manifest
    demo = [u["owner"] for u in manifest["demoUsers"]]
    assert demo

    first = await enroll_demo_users(store, enabler, manifest)
    assert first == demo and enabler.running == set(demo)
    enrolled = await store.list()
    assert [u.owner for u in enrolled] == demo
    assert all(u.bot_enabled and u.risk_profile is RiskProfile.BALANCED and u.max_trade_usd is None
               for u in enrolled)
    assert [u.vault_address for u in enrolled] == [u["vault"] for u in manifest["demoUsers"]]

    again = await enroll_demo_users(store, enabler, manifest)  # a restart
    assert again == demo and await store.list() == enrolled and enabler.enable_calls == demo

    # an operator's disable survives the next restart
    await run(users_spec(store, enabler), action="disable", owner=demo[0], reason="paused")
    after = await enroll_demo_users(store, enabler, manifest)
    assert after == demo[1:] and enabler.enable_calls == demo
    paused = await store.get(demo[0])
    assert paused is not None and not paused.bot_enabled and paused.disabled_reason == "paused"


async def test_xorj_ctl_users_through_a_real_control_socket(
    store: UserStore, enabler: ChainEnabler, desk: Desk, sock_dir: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    assert all(command in ctl.COMMANDS for command in CTL)  # `xorj ctl users` is wired in
    parser = argparse.ArgumentParser(prog="xorj")
    ctl.register(parser.add_subparsers(dest="command", required=True))
    owner = str(desk.owner)
    async with trio.open_nursery() as nursery:
        path = await nursery.start(serve_control_socket, sock_dir / "c.sock", user_commands(store, enabler))

        async def xorj(*argv: str) -> tuple[int, str, str]:
            args = parser.parse_args(["ctl", *argv, "--socket", str(path)])
            code: int = await trio.to_thread.run_sync(args.handler, args)
            out, err = capsys.readouterr()
            return code, out, err

        code, out, _ = await xorj("users", "add", owner, "--risk-profile", "conservative",
                                  "--max-trade-usd", "25")
        assert code == 0 and out.startswith(
            f"{owner} ({user_id_for(owner)}) enrolled: CONSERVATIVE, slippage 0.5 %, max trade 25 USD,")
        code, out, _ = await xorj("users", "enable", owner)
        assert code == 0 and "bot enabled" in out and desk.node.manifest["demoUsers"][0]["vault"] in out
        code, out, err = await xorj("users", "set", owner, "--slippage-pct", "9")
        assert (code, out) == (1, "")
        assert err.strip() == "xorj ctl users: users set: slippage_pct: 9.0 % is above the hard cap of 5 %"
        code, out, _ = await xorj("users", "list")
        assert code == 0 and out.splitlines()[0] == "1 user(s)" and owner in out.splitlines()[2]
        nursery.cancel_scope.cancel()


def test_ctl_users_command_declares_its_arguments_and_options() -> None:
    (users,) = CTL
    assert users.name == "users" and [a.name for a in users.arguments] == ["action", "owner"]
    assert users.arguments[1].optional
    options = {o.flag: o for o in users.options}
    assert set(options) == {"--risk-profile", "--max-trade-usd", "--slippage-pct", "--max-daily-loss-usd",
                            "--max-position-pct", "--reason"}
    assert options["--risk-profile"].choices == ("conservative", "balanced", "aggressive")
    assert options["--slippage-pct"].kind is float and options["--reason"].kind is str


# -- the bot key ---------------------------------------------------------------------------------


def key_file(path: Path, content: str, mode: int = 0o600) -> Path:
    path.write_text(content)
    os.chmod(path, mode)
    return path


def secrets_of(keypair: Keypair) -> list[str]:
    raw = bytes(keypair)
    return [str(keypair), json.dumps(list(raw)), ",".join(map(str, raw[:8])), raw[:32].hex()]


def test_bot_key_loads_a_0600_solana_keypair_file(tmp_path: Path) -> None:
    keypair = Keypair()
    loaded = load_bot_key(key_file(tmp_path / "bot.json", json.dumps(list(bytes(keypair)))))
    assert loaded.pubkey() == keypair.pubkey()
    assert load_bot_key(key_file(tmp_path / "ro.json", json.dumps(list(bytes(keypair))), 0o400)) == keypair
    assert describe_bot_key(loaded) == f"bot key {keypair.pubkey()}"


@pytest.mark.parametrize(("content", "mode", "problem"), [
    ("KEY", 0o644, "mode 0644 is not 0600 or 0400 (others must not read or write a signing key); "
                   "run `chmod 600 {path}`"),
    ("KEY", 0o640, "mode 0640"),
    ("KEY", 0o700, "mode 0700"),
    ("{not json KEY", 0o600, "not JSON (line 1 column 2)"),
    ('{"secret": KEY}', 0o600, "expected a JSON array of 64 integers, got a JSON dict"),
    ("KEY_SHORT", 0o600, "32 numbers, expected 64"),
    ("KEY_300", 0o600, "entry 3 is not an integer 0-255"),
    ("KEY_MISMATCH", 0o600, "not a valid ed25519 keypair"),
])
def test_bot_key_refuses_unsafe_or_garbage_files_without_showing_the_key(
    tmp_path: Path, content: str, mode: int, problem: str
) -> None:
    keypair = Keypair()
    numbers = list(bytes(keypair))
    if content == "KEY_SHORT":
        numbers = numbers[:32]
    elif content == "KEY_300":
        numbers[3] = 300
    elif content == "KEY_MISMATCH":
        numbers[40] ^= 1
    text = content.replace("KEY_SHORT", json.dumps(numbers)).replace("KEY_300", json.dumps(numbers)) \
        .replace("KEY_MISMATCH", json.dumps(numbers)).replace("KEY", json.dumps(numbers))
    path = key_file(tmp_path / "bot.json", text, mode)
    with pytest.raises(BotKeyError) as caught:
        load_bot_key(path)
    message = str(caught.value)
    assert message.startswith(f"bot key {path}: ") and problem.format(path=path) in message
    assert "\n" not in message
    assert not any(secret in message for secret in secrets_of(keypair))


def test_bot_key_refuses_a_missing_file_and_a_directory(tmp_path: Path) -> None:
    with pytest.raises(BotKeyError, match="no such file"):
        load_bot_key(tmp_path / "absent.json")
    folder = tmp_path / "dir"
    folder.mkdir(mode=0o700)
    with pytest.raises(BotKeyError, match="not a regular file"):
        load_bot_key(folder)


def test_bot_key_path_prefers_the_setting_then_the_manifest_then_xorj_home(tmp_path: Path) -> None:
    chain_bot = str(tmp_path / "chain-bot.json")
    manifest = {"botAuthority": {"pubkey": str(Pubkey.default()), "keypairFile": chain_bot}}
    plain = load_config({"XORJ_HOME": str(tmp_path / "home")})
    assert bot_key_path(plain, None) == tmp_path / "home" / "bot-keypair.json"
    assert bot_key_path(plain, manifest) == tmp_path / "chain-bot.json"
    explicit = load_config({
        "XORJ_HOME": str(tmp_path / "home"),
        "BOT_KEYPAIR_PATH": str(tmp_path / "k.json")
    })
    assert bot_key_path(explicit, manifest) == tmp_path / "k.json"
