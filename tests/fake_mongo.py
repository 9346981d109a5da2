"""A fake MongoDB server on 127.0.0.1: just enough of the wire protocol to fail on purpose.

It answers the handshake (``hello``/``isMaster``, in OP_QUERY or OP_MSG), ``ping``,
``buildInfo``, ``endSessions`` and ``killCursors`` as a standalone server would, and every
other command with what the test hands it: a reply document, raw reply bytes (corrupt BSON on
purpose), :data:`STALL`, which holds the reply back until the server stops (or
``stall_limit`` seconds pass, and then drops the connection), or :data:`DROP`, which closes
the connection at once. It records every command it receives. Each connection runs in its
own thread; :meth:`FakeMongo.stop` ends them all.

:class:`ChangeStreams` scripts a replica set member's change streams: the ``aggregate`` that
opens a ``$changeStream``, and each ``getMore`` on it, answer the steps a test lists, in order.
"""

from __future__ import annotations

import contextlib
import socket
import socketserver
import struct
import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from typing import Any, Final

import bson
from bson import Timestamp
from bson.int64 import Int64

__all__ = [
    "DROP",
    "STALL",
    "ChangeStreams",
    "FakeMongo",
    "Responder",
    "change",
    "cursor_reply",
    "fake_mongo",
    "raw_cursor_reply",
    "resume_token",
]

OP_REPLY: Final = 1
OP_QUERY: Final = 2004
OP_MSG: Final = 2013
_HEADER = struct.Struct("<iiii")
_POLL_SECONDS: Final = 0.05
#: A connection ends after this many messages or polls, whatever happens.
_MAX_MESSAGES: Final = 10_000
_MAX_POLLS: Final = 2_400  # two minutes of silence


class _Stall:
    def __repr__(self) -> str:
        return "STALL"


#: A reply that never comes: the server waits until it is stopped.
STALL: Final = _Stall()


class _Drop:
    def __repr__(self) -> str:
        return "DROP"


#: No reply at all: the server closes the connection, as a network failure would.
DROP: Final = _Drop()

Reply = dict[str, Any] | bytes | _Stall | _Drop
Responder = Callable[[dict[str, Any]], Reply]


def cursor_reply(
    batch: list[dict[str, Any]], *, cursor_id: int = 0, first: bool = True
) -> dict[str, Any]:
    """A command reply opening (``first``) or continuing a cursor with ``batch``."""
    key = "firstBatch" if first else "nextBatch"
    return {"cursor": {"id": Int64(cursor_id), "ns": "rc.rocketchat_room", key: batch}, "ok": 1.0}


def raw_cursor_reply(placeholder: bytes, raw: bytes, batch: list[dict[str, Any]]) -> bytes:
    """The BSON of ``cursor_reply(batch)`` with ``placeholder`` replaced by ``raw``.

    ``raw`` must have the same length, so that every length prefix stays right and only the
    bytes themselves are wrong (invalid UTF-8, an unknown element type…).
    """
    assert len(placeholder) == len(raw)
    encoded = bson.encode(cursor_reply(batch))
    assert encoded.count(placeholder) == 1
    return encoded.replace(placeholder, raw)


def _hello() -> dict[str, Any]:
    return {
        "helloOk": True,
        "isWritablePrimary": True,
        "ismaster": True,
        "maxBsonObjectSize": 16 * 1024 * 1024,
        "maxMessageSizeBytes": 48_000_000,
        "maxWriteBatchSize": 100_000,
        "localTime": datetime.now(timezone.utc),
        "logicalSessionTimeoutMinutes": 30,
        "connectionId": 1,
        "minWireVersion": 0,
        "maxWireVersion": 21,
        "readOnly": False,
        "ok": 1.0,
    }


_DEFAULTS: Final[dict[str, Responder]] = {
    "hello": lambda _: _hello(),
    "ismaster": lambda _: _hello(),
    "ping": lambda _: {"ok": 1.0},
    "buildinfo": lambda _: {"version": "7.0.0", "versionArray": [7, 0, 0, 0], "ok": 1.0},
    "endsessions": lambda _: {"ok": 1.0},
    "killcursors": lambda command: {"cursorsKilled": command.get("cursors", []), "ok": 1.0},
}


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = False  # server_close() joins every connection's thread
    block_on_close = True
    allow_reuse_address = True

    def __init__(self, responders: dict[str, Responder], stall_limit: float) -> None:
        super().__init__(("127.0.0.1", 0), _Connection)
        self.responders = responders
        self.stall_limit = stall_limit
        self.stopping = threading.Event()
        self.received: list[dict[str, Any]] = []


class _Connection(socketserver.BaseRequestHandler):
    server: _Server

    def handle(self) -> None:
        sock: socket.socket = self.request
        sock.settimeout(_POLL_SECONDS)
        for _ in range(_MAX_MESSAGES):
            header = self._read(sock, _HEADER.size)
            if header is None:
                return
            length, request_id, _, opcode = _HEADER.unpack(header)
            payload = self._read(sock, length - _HEADER.size)
            if payload is None:
                return
            command = self._command(opcode, payload)
            name = next(iter(command), "")
            self.server.received.append(command)
            responder = self.server.responders.get(name.lower(), _DEFAULTS.get(name.lower()))
            reply = _unknown(name) if responder is None else responder(command)
            if isinstance(reply, _Drop):
                return  # the handler's end closes the connection
            if isinstance(reply, _Stall):
                # Hold the reply back; once released (or after the limit) drop the connection.
                self.server.stopping.wait(self.server.stall_limit)
                return
            body = reply if isinstance(reply, bytes) else bson.encode(reply)
            sock.sendall(_frame(opcode, request_id, body))

    def _read(self, sock: socket.socket, size: int) -> bytes | None:
        """``size`` bytes, or None once the client hung up or the server is stopping."""
        chunks: list[bytes] = []
        missing = size
        for _ in range(_MAX_POLLS):
            if self.server.stopping.is_set():
                return None
            try:
                chunk = sock.recv(missing)
            except TimeoutError:
                continue
            except OSError:
                return None
            if not chunk:
                return None
            chunks.append(chunk)
            missing -= len(chunk)
            if not missing:
                return b"".join(chunks)
        return None

    @staticmethod
    def _command(opcode: int, payload: bytes) -> dict[str, Any]:
        if opcode == OP_QUERY:
            # flags, full collection name (a C string), skip, limit, then the query.
            start = payload.index(b"\x00", 4) + 1 + 8
            return bson.decode(payload[start : start + _length(payload, start)])
        if opcode != OP_MSG:
            return {}
        flags = struct.unpack_from("<I", payload)[0]
        end = len(payload) - (4 if flags & 1 else 0)  # a trailing checksum
        command: dict[str, Any] = {}
        position = 4
        while position < end:  # bounded: every section advances the position
            kind = payload[position]
            position += 1
            if kind == 0:
                size = _length(payload, position)
                command = {**bson.decode(payload[position : position + size]), **command}
                position += size
            else:
                size = _length(payload, position)
                name_end = payload.index(b"\x00", position + 4)
                name = payload[position + 4 : name_end].decode()
                command[name] = bson.decode_all(payload[name_end + 1 : position + size])
                position += size
        return command


def _length(payload: bytes, position: int) -> int:
    return int(struct.unpack_from("<i", payload, position)[0])


def _unknown(name: str) -> dict[str, Any]:
    return {"ok": 0.0, "errmsg": f"no such command: '{name}'", "code": 59}


def _frame(opcode: int, request_id: int, body: bytes) -> bytes:
    if opcode == OP_QUERY:
        # OP_REPLY: flags, cursor id, starting from, number returned, then the document.
        message = struct.pack("<iqii", 0, 0, 0, 1) + body
        reply_opcode = OP_REPLY
    else:
        message = struct.pack("<I", 0) + b"\x00" + body
        reply_opcode = OP_MSG
    header = _HEADER.pack(_HEADER.size + len(message), 0, request_id, reply_opcode)
    return header + message


class FakeMongo:
    """A running fake server; see the module's docstring."""

    def __init__(self, responders: dict[str, Responder], *, stall_limit: float) -> None:
        self._server = _Server({name.lower(): r for name, r in responders.items()}, stall_limit)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": _POLL_SECONDS}
        )
        self._thread.start()

    @property
    def address(self) -> str:
        """``127.0.0.1:<port>``."""
        host, port = self._server.server_address[:2]
        return f"{host}:{port}"

    def uri(self, options: str = "") -> str:
        """A URI of database ``rc`` on this server, with ``options`` appended."""
        return f"mongodb://{self.address}/rc?directConnection=true{options}"

    @property
    def commands(self) -> list[str]:
        """The names of the commands received so far, in order."""
        return [next(iter(command), "") for command in self._server.received]

    def received(self, name: str) -> list[dict[str, Any]]:
        """The commands named ``name`` received so far, in order."""
        return [command for command in self._server.received if next(iter(command), "") == name]

    def stop(self) -> None:
        """Release every stalled reply, close every connection and join their threads."""
        self._server.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


def resume_token(n: int) -> dict[str, Any]:
    """The resume token of a stream's ``n``-th change (ordered as ``n``)."""
    return {"_data": f"82{n:016X}"}


def change(
    n: int,
    operation: str,
    collection: str = "rocketchat_room",
    document: dict[str, Any] | None = None,
    *,
    key: Any = None,
) -> dict[str, Any]:
    """A change event, the ``n``-th of its stream: token and cluster time follow from ``n``.

    ``document`` is the full document (looked up, for an update); ``key`` its ``_id`` when
    there is no document (a delete).
    """
    event: dict[str, Any] = {
        "_id": resume_token(n),
        "operationType": operation,
        "clusterTime": Timestamp(1_700_000_000 + n, 1),
        "ns": {"db": "rc", "coll": collection},
    }
    if operation in ("insert", "update", "replace", "delete"):
        event["documentKey"] = {"_id": key if document is None else document["_id"]}
    if document is not None:
        event["fullDocument"] = document
    return event


#: A change stream's cursor while it is open.
_STREAM_CURSOR: Final = 77


class ChangeStreams:
    """A replica set member whose collections and change streams a test writes down.

    Every ``find`` answers the whole of its collection in ``collections`` (filters and
    projections are not applied: the test holds what the query would find). The
    ``aggregate`` opening a ``$changeStream`` and each ``getMore`` on it take the next of
    ``steps``: a list of events (the batch), :data:`DROP` (the connection closes), or an
    error reply (a dict, ``{"ok": 0, "code": …}``). Once the steps run out, batches are empty.
    A batch holding an ``invalidate`` closes the cursor, as a server does. ``ping`` gives
    the cluster time the stream starts at.
    """

    def __init__(
        self, collections: dict[str, list[dict[str, Any]]], steps: list[Any] | None = None
    ) -> None:
        self.collections = collections
        self.steps: list[Any] = list(steps or [])
        self.taken = 0
        self._lock = threading.Lock()
        self._last = resume_token(0)

    #: The cluster time ``ping`` answers, which the first stream starts at.
    START: Final = Timestamp(1_700_000_000, 0)

    def responders(self) -> dict[str, Responder]:
        """The responders of :func:`fake_mongo` that make a server this member."""
        return {
            "hello": self._hello,
            "isMaster": self._hello,
            "ping": lambda _: {"ok": 1.0, "operationTime": self.START},
            "find": self._find,
            "aggregate": self._aggregate,
            "getMore": self._get_more,
        }

    def _hello(self, command: dict[str, Any]) -> dict[str, Any]:
        return {**_hello(), "setName": "rs0", "secondary": False}

    def _find(self, command: dict[str, Any]) -> dict[str, Any]:
        batch = list(self.collections.get(command["find"], []))
        reply = cursor_reply(batch)
        reply["operationTime"] = self.START
        return reply

    def _aggregate(self, command: dict[str, Any]) -> Reply:
        pipeline = command.get("pipeline") or [{}]
        if "$changeStream" not in pipeline[0]:
            return _unknown("aggregate without $changeStream")
        return self._take("firstBatch")

    def _get_more(self, command: dict[str, Any]) -> Reply:
        return self._take("nextBatch")

    def _take(self, key: str) -> Reply:
        with self._lock:
            step: Any = self.steps[self.taken] if self.taken < len(self.steps) else []
            self.taken += 1
            if not isinstance(step, list):
                return step  # DROP, or an error reply
            if step:
                self._last = step[-1]["_id"]
            closed = any(event.get("operationType") == "invalidate" for event in step)
            return {
                "cursor": {
                    "id": Int64(0 if closed else _STREAM_CURSOR),
                    "ns": "rc.$cmd.aggregate",
                    key: step,
                    "postBatchResumeToken": self._last,
                },
                "operationTime": self.START,
                "ok": 1.0,
            }


@contextlib.contextmanager
def fake_mongo(stall_limit: float = 5.0, **responders: Responder) -> Iterator[FakeMongo]:
    """A :class:`FakeMongo` answering with ``responders`` (by command name), stopped after."""
    server = FakeMongo(responders, stall_limit=stall_limit)
    try:
        yield server
    finally:
        server.stop()
