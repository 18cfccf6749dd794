"""The control socket: newline-delimited JSON commands over a Unix stream socket.

Owns: the socket file (created 0600, a stale file from a dead engine replaced, removed on exit),
who may talk (peer uid via SO_PEERCRED: the engine's own uid or root), the wire format and the
validation of every request against the caller's command table, before any handler runs.

Wire format, one JSON object per line each way::

    -> {"cmd": "restart", "args": {"actor": "rpc_client"}}
    <- {"ok": true, "result": ...}   or   {"ok": false, "error": "restart: missing argument 'actor'"}

Failure it contains: a bad client or a bad command. Malformed JSON, unknown commands, wrong
arguments, oversized lines, idle or too many clients, and handlers that raise all become an
error line to that one client; the server keeps serving everyone else. A handler raising
``CommandError`` is an expected refusal (its message goes to the client); any other exception
is a bug, answered as an error AND logged with its traceback. Cancellation is never caught.

May import: the standard library, trio, attrs.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import socket
import stat
import struct
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Final

import attrs
import trio

__all__ = [
    "CommandError",
    "CommandSpec",
    "ControlSocketError",
    "serve_control_socket",
]

logger = logging.getLogger(__name__)

MAX_LINE_BYTES: Final = 64 * 1024
DEFAULT_IDLE_TIMEOUT: Final = 300.0
DEFAULT_MAX_CONNECTIONS: Final = 16
_SEND_TIMEOUT: Final = 5.0
_PROBE_TIMEOUT: Final = 1.0
_DRAIN_LIMIT: Final = 16 * MAX_LINE_BYTES
# sockaddr_un.sun_path is 108 bytes on Linux, including the terminating NUL.
_MAX_SOCKET_PATH: Final = 107

Handler = Callable[[Mapping[str, object]], Awaitable[object]]

_TYPE_NAMES: Final[Mapping[type, str]] = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "a boolean",
    list: "a list",
    dict: "an object",
}


class CommandError(Exception):
    """Raised by a handler to refuse a command; the message is sent to the client as is."""


class ControlSocketError(Exception):
    """The control socket cannot be opened (path in use by a live engine, not a socket, too long)."""


@attrs.frozen
class CommandSpec:
    """One control command: its handler and the arguments it accepts (name -> JSON type).

    Arguments are checked here, so a handler receives exactly its required names, plus any of
    its optional names the client sent, each of the declared type (``float`` accepts integers).
    """

    handler: Handler
    required: Mapping[str, type] = attrs.field(factory=dict)
    optional: Mapping[str, type] = attrs.field(factory=dict)
    help: str = ""
    timeout: float = 30.0


class _BadRequest(Exception):
    """A request that fails validation; the message goes to the client."""


def _type_ok(value: object, expected: type) -> bool:
    if expected is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if expected is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, expected)


def _validate(line: bytes, commands: Mapping[str, CommandSpec]) -> tuple[str, CommandSpec, dict[str, object]]:
    try:
        request = json.loads(line)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise _BadRequest(f"request is not valid JSON: {e}") from None
    if not isinstance(request, dict):
        raise _BadRequest('request must be a JSON object like {"cmd": "status", "args": {}}')
    extra = sorted(set(request) - {"cmd", "args"})
    if extra:
        raise _BadRequest(f"unknown request field {extra[0]!r}; a request has 'cmd' and 'args'")
    name = request.get("cmd")
    known = ", ".join(sorted(commands))
    if not isinstance(name, str):
        raise _BadRequest(f"request needs 'cmd' naming a command; known: {known}")
    spec = commands.get(name)
    if spec is None:
        raise _BadRequest(f"unknown command {name!r}; known: {known}")
    args = request.get("args", {})
    if args is None:
        args = {}
    if not isinstance(args, dict):
        raise _BadRequest(f"{name}: args must be an object")
    for arg in spec.required:
        if arg not in args:
            raise _BadRequest(f"{name}: missing argument {arg!r}")
    accepted = {**spec.required, **spec.optional}
    for arg, value in args.items():
        expected = accepted.get(arg)
        if expected is None:
            names = ", ".join(accepted) or "none"
            raise _BadRequest(f"{name}: unknown argument {arg!r}; accepted: {names}")
        if not _type_ok(value, expected):
            type_name = _TYPE_NAMES.get(expected, expected.__name__)
            raise _BadRequest(f"{name}: argument {arg!r} must be {type_name}, got {json.dumps(value)}")
    return name, spec, args


def _encode(response: Mapping[str, object]) -> bytes:
    return json.dumps(response, separators=(",", ":"), allow_nan=False).encode() + b"\n"


def _error(message: str) -> bytes:
    return _encode({"ok": False, "error": message})


async def _answer(line: bytes, commands: Mapping[str, CommandSpec]) -> bytes:
    try:
        name, spec, args = _validate(line, commands)
    except _BadRequest as e:
        return _error(str(e))
    result: object = None
    with trio.move_on_after(spec.timeout) as scope:
        try:
            result = await spec.handler(args)
        except CommandError as e:
            return _error(str(e))
        except Exception as e:
            # The one broad catch in the engine: a buggy command must not take the operator's
            # only control channel down. The traceback is logged; the client gets a short line.
            logger.exception("control command failed", extra={"cmd": name})
            return _error(f"{name}: internal error: {type(e).__name__}: {e}")
    if scope.cancelled_caught:
        return _error(f"{name}: no answer within {spec.timeout:g}s")
    try:
        return _encode({"ok": True, "result": result})
    except (TypeError, ValueError) as e:
        logger.error("control command returned a non-JSON result", extra={"cmd": name, "error": str(e)})
        return _error(f"{name}: internal error: result is not JSON ({e})")


def _peer_uid(stream: trio.SocketStream) -> int:
    creds = stream.socket.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    return int(uid)


def peer_allowed(peer_uid: int, own_uid: int) -> bool:
    """Only the engine's own user, or root, may drive the engine."""
    return peer_uid in (own_uid, 0)


async def _send(stream: trio.SocketStream, data: bytes) -> None:
    with trio.move_on_after(_SEND_TIMEOUT):
        await stream.send_all(data)


async def _drain(stream: trio.SocketStream) -> None:
    """Half-close, then read and discard what the client is still sending (bounded in time and
    bytes): closing with unread input resets the connection, and the client would lose the
    error line it is about to read."""
    await stream.send_eof()
    discarded = 0
    with trio.move_on_after(_SEND_TIMEOUT):
        while discarded < _DRAIN_LIMIT and (chunk := await stream.receive_some(MAX_LINE_BYTES)):
            discarded += len(chunk)


async def _serve_connection(
    stream: trio.SocketStream, commands: Mapping[str, CommandSpec], idle_timeout: float
) -> None:
    async with stream:
        try:
            uid = _peer_uid(stream)
            if not peer_allowed(uid, os.geteuid()):
                logger.warning("control socket peer refused", extra={"peer_uid": uid})
                await _send(stream, _error(f"permission denied: uid {uid} may not control this engine"))
                await _drain(stream)
                return
            buffer = bytearray()
            while True:
                newline = buffer.find(b"\n")
                if newline > MAX_LINE_BYTES or (newline < 0 and len(buffer) > MAX_LINE_BYTES):
                    # No resync past an oversized line: whatever follows may be its tail.
                    await _send(stream, _error(f"request line too long (limit {MAX_LINE_BYTES} bytes)"))
                    await _drain(stream)
                    return
                if newline >= 0:
                    line = bytes(buffer[:newline]).strip()
                    del buffer[: newline + 1]
                    if line:
                        await _send(stream, await _answer(line, commands))
                    continue
                with trio.move_on_after(idle_timeout):
                    chunk = await stream.receive_some(MAX_LINE_BYTES)
                    if not chunk:
                        return
                    buffer += chunk
                    continue
                await _send(stream, _error(f"idle for {idle_timeout:g}s; closing"))
                return
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as e:
            # The client went away mid-request; nothing to answer.
            logger.debug("control connection dropped", extra={"error": repr(e)})


def _remove_stale_socket(path: Path) -> None:
    """Remove a socket file left by a dead engine; refuse if a live one answers or it is not a socket."""
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise ControlSocketError(f"{path} exists and is not a socket; refusing to replace it")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(_PROBE_TIMEOUT)
    try:
        probe.connect(str(path))
    except (ConnectionRefusedError, FileNotFoundError):
        path.unlink(missing_ok=True)
        logger.info("removed stale control socket", extra={"path": str(path)})
        return
    except OSError as e:
        # A timeout means someone holds it but is not accepting: still not ours to delete.
        raise ControlSocketError(
            f"{path} is in use and cannot be probed ({e}); is another engine running?"
        ) from e
    finally:
        probe.close()
    raise ControlSocketError(f"another engine is already answering on {path}")


def _open_listener(path: Path) -> tuple[trio.SocketListener, int]:
    """Bind and listen on ``path``; returns the listener and the socket file's inode."""
    if len(os.fsencode(path)) > _MAX_SOCKET_PATH:
        raise ControlSocketError(f"control socket path is too long for a Unix socket ({path})")
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    _remove_stale_socket(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(str(path))
        # Nobody can connect before listen(), so tightening the mode here closes the window
        # without touching the process-wide umask (which other threads may rely on).
        os.chmod(path, 0o600)
        sock.listen(DEFAULT_MAX_CONNECTIONS)
        inode = path.stat().st_ino
    except OSError as e:
        sock.close()
        if e.errno == errno.EADDRINUSE:
            raise ControlSocketError(f"another engine is already answering on {path}") from e
        raise
    return trio.SocketListener(trio.socket.from_stdlib_socket(sock)), inode


def _remove_own_socket(path: Path, inode: int) -> None:
    """Remove the socket file only if it is still ours (a successor may have replaced it)."""
    try:
        if path.stat().st_ino == inode:
            path.unlink()
    except FileNotFoundError:
        pass


async def serve_control_socket(
    path: Path,
    commands: Mapping[str, CommandSpec],
    *,
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
    max_connections: int = DEFAULT_MAX_CONNECTIONS,
    task_status: trio.TaskStatus[Path] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``commands`` on the Unix socket at ``path`` until cancelled.

    ``task_status.started(path)`` is called once the socket accepts connections. Raises
    ControlSocketError (before ``started``) if another engine answers on ``path``. The socket
    file is removed on exit. Beyond ``max_connections`` concurrent clients, a new client gets an
    error line and is closed rather than queued, so a stuck client cannot lock operators out.
    """
    listener, inode = _open_listener(path)
    limiter = trio.CapacityLimiter(max_connections)
    logger.info("control socket listening", extra={"path": str(path)})
    try:
        async with listener, trio.open_nursery() as nursery:
            task_status.started(path)
            while True:
                stream = await listener.accept()
                nursery.start_soon(_admit, stream, commands, idle_timeout, limiter)
    finally:
        _remove_own_socket(path, inode)


async def _admit(
    stream: trio.SocketStream,
    commands: Mapping[str, CommandSpec],
    idle_timeout: float,
    limiter: trio.CapacityLimiter,
) -> None:
    try:
        limiter.acquire_nowait()
    except trio.WouldBlock:
        async with stream:
            try:
                await _send(stream, _error(f"too many control connections (limit {limiter.total_tokens})"))
                await _drain(stream)
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                pass
        return
    try:
        await _serve_connection(stream, commands, idle_timeout)
    finally:
        limiter.release()
