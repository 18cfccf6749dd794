"""engine.logs: one handler on stderr; structured fields survive in both formats."""

from __future__ import annotations

import json
import logging

import pytest

from engine.logs import configure_logging

pytestmark = pytest.mark.usefixtures("restore_root_logger")


def test_json_lines_carry_the_fixed_keys_and_every_extra_field(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("info", "json")
    logging.getLogger("supervisors.root").info(
        "child restarted", extra={"child": "rpc_client", "restarts": 3, "backoff_s": 0.5}
    )
    entry = json.loads(capsys.readouterr().err)
    assert entry["level"] == "INFO"
    assert entry["logger"] == "supervisors.root"
    assert entry["msg"] == "child restarted"
    assert entry["ts"].endswith("Z") and "T" in entry["ts"]
    assert (entry["child"], entry["restarts"], entry["backoff_s"]) == ("rpc_client", 3, 0.5)


def test_json_exceptions_are_one_string_field_on_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", "json")
    try:
        raise RuntimeError("rpc node went away")
    except RuntimeError:
        logging.getLogger("actors.rpc").exception("child crashed", extra={"child": "rpc_client"})
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1
    entry = json.loads(lines[0])
    assert entry["child"] == "rpc_client"
    assert "RuntimeError: rpc node went away" in entry["exc"]


def test_json_renders_fields_that_are_not_json_as_strings(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", "json")
    logging.getLogger("x").info("odd field", extra={"when": object})
    assert json.loads(capsys.readouterr().err)["when"] == str(object)


def test_text_lines_put_extra_fields_after_the_message(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("DEBUG", "text")
    logging.getLogger("supervisors.root").warning(
        "child crashed", extra={"child": "price feed", "restarts": 2}
    )
    line = capsys.readouterr().err.strip()
    assert "WARNING" in line and "supervisors.root: child crashed" in line
    assert line.endswith('child="price feed" restarts=2')


def test_the_level_filters_and_reconfiguring_does_not_duplicate_lines(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("INFO", "text")
    configure_logging("WARNING", "text")
    log = logging.getLogger("engine.test")
    log.info("hidden")
    log.warning("shown")
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and "shown" in lines[0]


def test_an_unknown_level_is_refused() -> None:
    with pytest.raises(ValueError, match="LOUD"):
        configure_logging("LOUD", "text")
