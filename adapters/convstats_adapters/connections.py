"""What one client may hold of ``convstats serve``: a connection slot, for a bounded time.

uvicorn bounds how long an idle keep-alive connection stays open, but not how long a new
connection may take to send its request head, nor how many connections are open: a client
that connects and sends nothing, or half its headers, held a socket and a file descriptor
for as long as it liked, and a few hundred of them starved every real request.
:func:`bounded_protocol` gives uvicorn an HTTP protocol (its own h11 one, bounded) that

- closes a connection whose request head is not complete ``header_timeout`` seconds after
  the connection was made, or after the previous response on it was sent;
- answers ``503`` and closes at once a connection that would make more than
  ``max_connections`` open, logging that once per interval, not once a connection.

Needs uvicorn (the ``server`` extra).
"""

from __future__ import annotations

import asyncio
import logging
from typing import ClassVar, Final

from uvicorn.protocols.http.h11_impl import H11Protocol

from convstats_adapters.logs import Throttle

__all__ = ["RESERVED_DESCRIPTORS", "BoundedH11Protocol", "bounded_protocol", "descriptor_limit"]

#: File descriptors the process needs besides its connections: the listener, the event
#: loop, standard streams, the store's files while they load, a MongoDB pool.
RESERVED_DESCRIPTORS: Final = 64

_logger = logging.getLogger("convstats.connections")
_BUSY: Final = (
    b"HTTP/1.1 503 Service Unavailable\r\n"
    b"content-type: text/plain; charset=utf-8\r\n"
    b"content-length: 19\r\n"
    b"connection: close\r\n"
    b"\r\n"
    b"Service Unavailable"
)


class BoundedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline on each request head and a connection limit.

    Build a configured subclass with :func:`bounded_protocol`.
    """

    header_timeout: ClassVar[float] = 10.0
    max_connections: ClassVar[int] = 512
    refusals: ClassVar[Throttle] = Throttle()

    # The deadline of the request head awaited, and the request before it (None: none yet).
    _head_deadline: asyncio.TimerHandle | None = None
    _before_head: object | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Refuse the connection past the limit, else start waiting for its request head."""
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            self._refuse()
            return
        self._await_head()

    def data_received(self, data: bytes) -> None:
        """Read ``data``; once it completes a request head, that head is no longer awaited."""
        super().data_received(data)
        self._check_head()

    def on_response_complete(self) -> None:
        """After an answer, wait for the next request head as for the first."""
        super().on_response_complete()
        if not self.transport.is_closing():
            self._await_head()
            self._check_head()  # a pipelined request may have been read already

    def connection_lost(self, exc: Exception | None) -> None:
        """Forget the connection, and its deadline."""
        self._cancel_deadline()
        super().connection_lost(exc)

    def _await_head(self) -> None:
        self._cancel_deadline()
        self._before_head = self.cycle
        self._head_deadline = self.loop.call_later(self.header_timeout, self._head_timed_out)

    def _check_head(self) -> None:
        # uvicorn starts a new request cycle once a request head is complete.
        if self._head_deadline is not None and self.cycle is not self._before_head:
            self._cancel_deadline()

    def _cancel_deadline(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _head_timed_out(self) -> None:
        self._head_deadline = None
        if not self.transport.is_closing():
            _logger.debug(
                "closed a connection from %s: no complete request head in %g s",
                _address(self.client),
                self.header_timeout,
            )
            self.transport.close()

    def _refuse(self) -> None:
        self.connections.discard(self)  # at once: it holds no slot while it closes
        self.transport.write(_BUSY)
        self.transport.close()
        held = self.refusals.allow()
        if held is not None:
            also = f"; {held} more since the last such line" if held else ""
            _logger.warning(
                "refused a connection from %s: %d connections are open, the limit%s",
                _address(self.client),
                self.max_connections,
                also,
            )


def _address(client: tuple[str, int] | None) -> str:
    return "%s:%d" % client if client else "a client"  # noqa: UP031 (uvicorn's own form)


def bounded_protocol(*, header_timeout: float, max_connections: int) -> type[BoundedH11Protocol]:
    """A :class:`BoundedH11Protocol` with these bounds, for ``uvicorn.Config(http=…)``."""
    if not header_timeout > 0:
        raise ValueError(f"header_timeout must be a positive number, got {header_timeout!r}")
    if isinstance(max_connections, bool) or max_connections < 1:
        raise ValueError(f"max_connections must be at least 1, got {max_connections!r}")
    bounds = {
        "header_timeout": float(header_timeout),
        "max_connections": max_connections,
        "refusals": Throttle(),
    }
    return type("BoundedH11Protocol", (BoundedH11Protocol,), bounds)


def descriptor_limit() -> int | None:
    """The number of files this process may open (``ulimit -n``), or ``None`` when unknown."""
    try:
        import resource
    except ImportError:  # not on Unix
        return None
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return None if soft == resource.RLIM_INFINITY else soft
