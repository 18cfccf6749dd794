"""The blocking client side of the control socket, used by ``xorj ctl``.

Owns: connecting to the engine's Unix socket, sending one request line, reading one response
line, all under one overall deadline.

Failure it contains: an engine that is not running, not answering, or refusing the command.
Every such case is a ``ControlError`` whose message tells the operator what to do next, never a
bare ``ConnectionRefusedError`` traceback.

May import: the standard library only (it runs in a short-lived CLI process, outside trio).
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Final

__all__ = ["ControlError", "request"]

MAX_RESPONSE_BYTES: Final = 16 * 1024 * 1024


class ControlError(Exception):
    """A control request did not produce a result; ``str()`` is one operator-facing line."""


def _remaining(deadline: float, path: Path, timeout: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise ControlError(f"no answer from the engine within {timeout:g}s (socket {path})")
    return left


def _connect(path: Path, timeout: float) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(str(path))
    except FileNotFoundError:
        sock.close()
        raise ControlError(f"is the engine running? no control socket at {path}") from None
    except ConnectionRefusedError:
        sock.close()
        raise ControlError(
            f"is the engine running? nothing accepts connections on {path} (stale socket file)"
        ) from None
    except PermissionError:
        sock.close()
        raise ControlError(f"permission denied on {path}; run as the engine's user") from None
    except TimeoutError:
        sock.close()
        raise ControlError(f"the engine did not accept a connection within {timeout:g}s ({path})") from None
    except OSError as e:
        sock.close()
        raise ControlError(f"cannot connect to {path}: {e.strerror or e}") from None
    return sock


def request(path: Path, cmd: str, args: Mapping[str, object] | None = None, timeout: float = 10.0) -> object:
    """Send ``cmd`` with ``args`` to the engine at ``path`` and return its result.

    Raises ControlError if the engine cannot be reached, does not answer within ``timeout``
    seconds, answers garbage, or refuses the command (the engine's error message is the
    ControlError's message).
    """
    deadline = time.monotonic() + timeout
    line = json.dumps({"cmd": cmd, "args": dict(args or {})}).encode() + b"\n"
    sock = _connect(path, timeout)
    with sock:
        try:
            sock.settimeout(_remaining(deadline, path, timeout))
            try:
                sock.sendall(line)
            except BrokenPipeError:
                pass  # the engine refused us before reading (busy, wrong uid): read its reason
            buffer = bytearray()
            while b"\n" not in buffer:
                if len(buffer) > MAX_RESPONSE_BYTES:
                    raise ControlError(f"the engine's answer exceeds {MAX_RESPONSE_BYTES} bytes")
                sock.settimeout(_remaining(deadline, path, timeout))
                chunk = sock.recv(65536)
                if not chunk:
                    raise ControlError("the engine closed the connection without answering")
                buffer += chunk
        except TimeoutError:
            raise ControlError(f"no answer from the engine within {timeout:g}s (socket {path})") from None
        except (BrokenPipeError, ConnectionResetError):
            raise ControlError("the engine closed the connection without answering") from None
    raw = bytes(buffer[: buffer.index(b"\n")])
    try:
        response = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ControlError(f"the engine sent an invalid answer: {raw[:200]!r}") from None
    if not isinstance(response, dict) or not isinstance(response.get("ok"), bool):
        raise ControlError(f"the engine sent an invalid answer: {raw[:200]!r}")
    if not response["ok"]:
        raise ControlError(str(response.get("error") or "the engine refused the command without a reason"))
    return response.get("result")
