"""One guarded runner for every connection fedsim serves or opens.

Theory of operation
-------------------
A connection is fedsim's unit of failure. Whatever one peer does (close without
a TLS close_notify, reset, stall, send garbage) or whatever bug its input
reaches, the damage must stop at that connection: the lab's other listeners,
its DNS server and its log files go on. trio makes this a discipline rather
than a default: a task's exception cancels its nursery and climbs to the
process, and since trio 0.25 an error raised inside a connection's own nursery
arrives wrapped in an ``ExceptionGroup``, which a plain ``except OSError`` never
matches (that is how the clients port once died of one ordinary disconnect).

So every accepted connection of every server (the Edge's federation and
clients ports, the lab DNS server's TCP side, ``fedsim peer``'s listener) and
every connection the Edge opens itself (its partner legs) runs through
:func:`run_guarded`, which

1. lets cancellation through untouched (``trio.Cancelled``, ``KeyboardInterrupt``,
   ``SystemExit``: shutdown is not a fault), also out of exception groups;
2. swallows what a peer can cause (:data:`PEER_FAULTS`: broken or closed
   streams, OS and TLS errors, our own timeouts), leaf by leaf through groups:
   the handler has already said whatever it had to say about them;
3. turns anything else (a bug in fedsim reached by this input) into one
   :class:`InternalError` handed to the server's reporter, which records an
   ``internal-error`` event; no traceback reaches the console unless the
   reporter was asked for it (``fedsim serve --debug``);
4. always closes the connection's resource, forcefully, so nothing leaks.

Listeners get the runner through :func:`serve_guarded`, the only place in
fedsim that calls ``trio.serve_listeners`` (a test walks the sources to keep it
so). Work that is not a connection but must not take a server down either (one
DNS datagram) uses :func:`contain`.
"""

from __future__ import annotations

import contextlib
import socket
import sys
import traceback
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from typing import NoReturn, TextIO, TypeVar

import trio

__all__ = [
    "PEER_FAULTS",
    "InternalError",
    "Reporter",
    "contain",
    "detach_socket",
    "peer_label",
    "run_guarded",
    "serve_guarded",
    "stderr_reporter",
    "unexpected_errors",
]

T = TypeVar("T")

#: What a peer can make a connection raise; never a fedsim bug (ssl.SSLError is an OSError).
PEER_FAULTS: tuple[type[BaseException], ...] = (
    trio.BrokenResourceError,
    trio.ClosedResourceError,
    trio.TooSlowError,
    OSError,
)

#: Exceptions that mean "stop", not "something broke": never contained.
_STOPPING: tuple[type[BaseException], ...] = (trio.Cancelled, KeyboardInterrupt, SystemExit)


@dataclass(frozen=True, slots=True)
class InternalError:
    """A fedsim bug reached by one connection's input: what the reporter records.

    Attributes:
        server: which server or leg ("federation", "clients", "dns-tcp", "peer", "partner").
        peer: the other end, ``host:port`` (``[v6]:port``), or "-" when unknown.
        error: the first unexpected exception (out of any exception group).
        count: how many unexpected exceptions the connection raised together.
    """

    server: str
    peer: str
    error: BaseException
    count: int = 1

    @property
    def error_type(self) -> str:
        """The exception's class name, e.g. ``ValueError``."""
        return type(self.error).__name__

    def describe(self) -> str:
        """One line for a console: where, and what (no traceback)."""
        more = f" (+{self.count - 1} more)" if self.count > 1 else ""
        return (
            f"fedsim: internal error on {self.server} connection {self.peer}: "
            f"{self.error_type}: {self.error}{more}; the connection was closed and the "
            "lab goes on (please report it)"
        )

    def traceback(self) -> str:
        """The error's traceback, for ``--debug``."""
        return "".join(traceback.format_exception(self.error))


Reporter = Callable[[InternalError], None]


def stderr_reporter(*, debug: bool = False, stream: TextIO | None = None) -> Reporter:
    """A reporter that prints :meth:`InternalError.describe` (and the traceback if ``debug``)."""

    def report(fault: InternalError) -> None:
        out = stream if stream is not None else sys.stderr
        with contextlib.suppress(OSError, ValueError):  # a closed console must not matter
            print(fault.describe(), file=out, flush=True)
            if debug:
                print(fault.traceback(), file=out, flush=True)

    return report


def peer_label(address: object) -> str:
    """``host:port`` (``[v6]:port``) of a socket address, or "-" when it is not one."""
    if isinstance(address, tuple) and len(address) >= 2:
        host, port = str(address[0]), address[1]
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return "-"


def _leaves(exc: BaseException) -> Iterator[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            yield from _leaves(inner)
    else:
        yield exc


def unexpected_errors(
    exc: BaseException, expected: tuple[type[BaseException], ...] = PEER_FAULTS
) -> list[BaseException]:
    """The leaves of ``exc`` that are neither ``expected`` nor a request to stop."""
    return [e for e in _leaves(exc) if not isinstance(e, expected + _STOPPING)]


def _stopping_part(exc: BaseException) -> BaseException | None:
    """The part of ``exc`` that must propagate (cancellation, Ctrl-C), or None."""
    if isinstance(exc, BaseExceptionGroup):
        stopping, _rest = exc.split(_STOPPING)
        return stopping
    return exc if isinstance(exc, _STOPPING) else None


async def run_guarded(
    handler: Callable[[], Awaitable[object]],
    *,
    server: str,
    peer: str,
    report: Reporter,
    resource: trio.abc.AsyncResource | None = None,
    expected: tuple[type[BaseException], ...] = PEER_FAULTS,
) -> None:
    """Run one connection's ``handler`` so that nothing it raises leaves this call.

    Args:
        handler: the connection's work (handshake, request loop, its own nursery).
        server: the server's name, for the report.
        peer: the other end's address, for the report.
        report: called once with an :class:`InternalError` when the handler raised
            something unexpected.
        resource: closed (forcefully) when the handler ends, however it ends.
        expected: what this connection may raise because of its peer (contained
            silently); defaults to :data:`PEER_FAULTS`.

    Error handling:
        Cancellation propagates (it is how servers stop); everything else is
        contained here, the unexpected part reported (module docstring).
    """
    try:
        await handler()
    except BaseException as exc:
        stopping = _stopping_part(exc)
        bugs = unexpected_errors(exc, expected)
        if bugs:
            report(InternalError(server=server, peer=peer, error=bugs[0], count=len(bugs)))
        if stopping is not None:
            raise stopping from None
    finally:
        if resource is not None:
            with trio.CancelScope(shield=True):
                await trio.aclose_forcefully(resource)


def contain(server: str, peer: str, report: Reporter, work: Callable[[], T]) -> T | None:
    """Run synchronous ``work`` (one datagram's answer) and return its result.

    A bug in it is reported and swallowed, and None returned: the server goes on.
    """
    try:
        return work()
    except Exception as exc:
        report(InternalError(server=server, peer=peer, error=exc))
        return None


def _stream_peer(stream: trio.SocketStream) -> str:
    try:
        return peer_label(stream.socket.getpeername())
    except OSError:  # the peer is already gone
        return "-"


async def _guarded_connection(
    handler: Callable[[trio.SocketStream], Awaitable[object]],
    server: str,
    report: Reporter,
    expected: tuple[type[BaseException], ...],
    stream: trio.SocketStream,
) -> None:
    await run_guarded(
        partial(handler, stream),
        server=server,
        peer=_stream_peer(stream),
        report=report,
        resource=stream,
        expected=expected,
    )


async def serve_guarded(
    handler: Callable[[trio.SocketStream], Awaitable[object]],
    listeners: Sequence[trio.SocketListener],
    *,
    server: str,
    report: Reporter,
    expected: tuple[type[BaseException], ...] = PEER_FAULTS,
) -> NoReturn:
    """Accept connections on ``listeners`` forever, each run by :func:`run_guarded`.

    The handler owns the stream while it runs; the stream is closed when it
    returns or fails (a handler that handed the socket to a TLS stream of its
    own closes that one; closing the emptied trio stream again is harmless).

    Resource handling:
        The listeners are closed when this is cancelled (trio.serve_listeners).
    """
    await trio.serve_listeners(
        partial(_guarded_connection, handler, server, report, expected), list(listeners)
    )


def detach_socket(stream: trio.SocketStream) -> socket.socket:
    """Take the OS socket out of a trio stream (for a TLS stream that owns it from now on)."""
    return socket.socket(fileno=stream.socket.detach())
