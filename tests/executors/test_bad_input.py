"""Bad operator input over the control socket: users, trade, trades, jobs, kill-switch each answer
one clear error naming the problem, the node keeps running, and the database is unchanged."""

from __future__ import annotations

from tests.executors.conftest import Engine

BAD_PUBKEY = "not-a-pubkey-0OIl"
UNKNOWN_USER = "11111111111111111111111111111112"  # a valid public key nobody enrolled


async def test_bad_control_input_is_refused_by_name_and_changes_nothing(engine: Engine) -> None:
    owner = engine.demo_owner(0)
    before = await engine.snapshot()
    switches_before = engine.status()["kill_switches"]
    cases: list[tuple[str, dict[str, object], tuple[str, ...]]] = [
        ("users", {"action": "enable", "owner": UNKNOWN_USER}, ("unknown", UNKNOWN_USER)),
        ("users", {"action": "disable", "owner": UNKNOWN_USER}, ("unknown", UNKNOWN_USER)),
        ("users", {"action": "add", "owner": BAD_PUBKEY}, (BAD_PUBKEY,)),
        ("users", {"action": "set", "owner": owner, "slippage_pct": 7.5}, ("slippage", "5")),
        ("users", {"action": "add", "owner": UNKNOWN_USER, "slippage_pct": 5.01}, ("slippage", "5")),
        ("users", {"action": "frobnicate", "owner": owner}, ("unknown action", "frobnicate")),
        ("users", {"action": "set", "owner": owner, "max_trade_usd": -5.0}, ("max",)),
        ("trade", {"user": UNKNOWN_USER, "input": "USDC", "output": "JUP", "usd": 2.0},
         ("unknown user", UNKNOWN_USER)),
        ("trade", {"user": owner, "input": "USDC", "output": "JUP", "usd": -1.0}, ("--usd", "positive")),
        ("trade", {"user": owner, "input": "USDC", "output": "JUP", "usd": 0}, ("--usd", "positive")),
        ("trade", {"user": owner, "input": "DOGE", "output": "JUP", "usd": 2.0}, ("--input", "DOGE")),
        ("trade", {"user": owner, "input": "USDC", "output": "USDC", "usd": 2.0}, ("differ",)),
        ("trade", {"user": owner, "input": "USDC", "output": "JUP"}, ("missing argument", "usd")),
        ("trade", {"user": owner, "input": "USDC", "output": "JUP", "usd": "lots"}, ("usd", "number")),
        ("trades", {"status": "DONE"}, ("--status", "DONE")),
        ("trades", {"user": UNKNOWN_USER}, ("unknown user", UNKNOWN_USER)),
        ("trades", {"limit": 0}, ("--limit",)),
        ("jobs", {"user": BAD_PUBKEY}, ("unknown user", BAD_PUBKEY)),
        ("jobs", {"limit": 100000}, ("--limit",)),
        ("kill-switch", {"state": "on"}, ("--reason", "required")),
        ("kill-switch", {"state": "on", "reason": "   "}, ("--reason",)),
        ("kill-switch", {"state": "maybe", "reason": "x"}, ("'on' or 'off'", "maybe")),
        ("kill-switch", {"state": "on", "user": UNKNOWN_USER, "reason": "x"}, ("unknown user", UNKNOWN_USER)),
        ("kill-switch", {"state": "on", "user": "   ", "reason": "x"}, ("--user",)),
    ]
    problems = []
    for name, args, needles in cases:
        answer = await engine.ctl(name, **args)
        error = str(answer.get("error", ""))
        if answer.get("ok") is not False or not all(n.lower() in error.lower() for n in needles):
            problems.append((name, args, answer))
    assert not problems, problems

    # the node still runs and answers, and nothing changed
    status = await engine.ctl("status")
    assert status["ok"] is True and status["result"]["state"] == "running"
    assert engine.node.state == "running"
    assert await engine.snapshot() == before
    assert engine.status()["kill_switches"] == switches_before
    listed = await engine.ctl("users", action="list")
    assert listed["ok"] is True
    assert len(listed["result"]["users"]) == len(engine.manifest["demoUsers"])
    assert all(u["bot_enabled"] for u in listed["result"]["users"])
