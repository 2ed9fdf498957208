"""The Edge's wire taps: ``trace.log`` (its SIPStack trace) and a pcapng capture, off by default.

``fedsim serve --trace`` / ``--pcap FILE`` (and ``fedsim run --keep-logs`` /
``--pcap DIR``) turn them on. Off, nothing here exists: the recorder's ``taps``
is None and no SIP stream gets an ``on_wire`` callback, so the hot path pays
only the None checks it already made.

On, each connection of the Edge (federation port, clients port, partner legs)
gets a :class:`Tap`, its SIP stream's ``on_wire``: every whole message the Edge
reads or writes becomes a :class:`~simulator.trace.WireMessage` (side,
addresses, connection id, wall-clock time) that :class:`WireTaps` renders as a
``TL_INFO(TF_PROTOCOL)`` record for ``trace.log`` and as packets for the capture.
The recorder hands over each TF_DIAG record it writes (and the TF_COMPONENT
ones), so ``trace.log`` holds every record in the order it happened, numbered by
the recorder's one sequence counter, while ``edge.log`` keeps the TF_DIAG ones.

**Nothing waits on the disk.** Records and packets are built in memory. The
trace goes to its file with ``edge.log``: when the recorder flushes the events
held for a reply, right before it leaves (one write per burst; ``trace.log`` is
as current as ``edge.log``). The capture goes to its file 64 KiB at a time.
:meth:`WireTaps.flush_every` writes both at least once a second (a quiet lab's
last messages too) and :meth:`WireTaps.close` writes the rest, so Ctrl-C and
SIGTERM lose no tail. A write that fails is reported once per failure streak
(stderr and console) and the Edge keeps answering; lost trace records are
counted.

**Correlation.** ``Trace-Correlation-Id`` is one number per transaction
(Call-ID and CSeq; an ACK with its INVITE), and that transaction's TF_DIAG
record carries the same number in its ``[...]`` (inferred). The numbers come
from the taps' own random source, seeded by ``[edge] seed``, never from the
Edge's: turning a trace on changes no tag, branch or SRV order on the wire.
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

import trio

from simulator.diagnostics import EdgeLogTemplate, ResultCode
from simulator.errors import FedsimError
from simulator.sip import Request
from simulator.trace import (
    Side,
    WireMessage,
    format_component_record,
    format_protocol_record,
    transaction_key,
)
from simulator.trace.pcap import PcapWriter

#: The trace's file name in the log directory.
TRACE_LOG = "trace.log"
#: Seconds between two writes of what the trace and the capture hold, at the most.
FLUSH_SECONDS = 1.0
#: Transactions whose correlation id is remembered (the oldest is forgotten first).
MAX_TRANSACTIONS = 4096

TransactionKey = tuple[str, int, str]


class _TraceFile:
    """``trace.log``: records held in memory, appended in one write per flush."""

    def __init__(self, path: Path, notice: Callable[[str], None]) -> None:
        self.path = path
        self.notice = notice
        self.pending: list[str] = []
        self.lost = 0
        self._failing = False
        self._file: TextIO | None = self._open()

    def _open(self) -> TextIO:
        return self.path.open("a", encoding="utf-8", errors="backslashreplace", newline="")

    def flush(self) -> None:
        if not self.pending:
            return
        text = "".join(self.pending)
        count = len(self.pending)
        self.pending.clear()
        try:
            if self._file is None:
                self._file = self._open()
            self._file.write(text)
            self._file.flush()
        except OSError as exc:
            self.lost += count
            if not self._failing:
                self._failing = True
                self.notice(
                    f"fedsim: warning: cannot write {self.path}: {exc.strerror or exc}; "
                    "the Edge keeps answering and counts the trace records it loses"
                )
            self._close()
        else:
            if self._failing:
                self._failing = False
                self.notice(f"fedsim: {self.path} is writable again ({self.lost} record(s) lost)")

    def _close(self) -> None:
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()
        self._file = None

    def close(self) -> None:
        self.flush()
        self._close()


class Tap:
    """One connection's ``on_wire``: each message it carries, to the taps (module docstring).

    Attributes:
        side / local / remote: the connection's side of the Edge and its two ends.
        peer: the records' ``Peer:`` (the connection's name in the Edge records).
        connection: the connection's id (its ``ms-received-cid``, or ``leg-N``).
    """

    __slots__ = ("_taps", "connection", "local", "peer", "remote", "side")

    def __init__(
        self,
        taps: WireTaps,
        side: Side,
        local: tuple[str, int],
        remote: tuple[str, int],
        peer: str,
        connection: str,
    ) -> None:
        self._taps = taps
        self.side: Side = side
        self.local = local
        self.remote = remote
        self.peer = peer
        self.connection = connection

    def __call__(self, direction: str, data: bytes) -> None:
        """The SIP stream's callback: ``direction`` is "in" (received) or "out" (sent)."""
        self._taps.message(
            WireMessage(
                # Whole microseconds: the record's millisecond is then the one the
                # recorder's clock (time_ns, cut to the millisecond) gives a record after it.
                time.time_ns() // 1000 / 1_000_000,
                "incoming" if direction == "in" else "outgoing",
                self.side,
                self.local,
                self.remote,
                self.connection,
                data,
            ),
            self.peer,
        )

    def closed(self) -> None:
        """The connection ended: the capture shows its FINs."""
        self._taps.closed(self.connection, time.time())


def tap_for(
    taps: WireTaps | None,
    side: Side,
    local: tuple[str, int],
    remote: tuple[str, int],
    peer: str,
    connection: str | None = None,
) -> Tap | None:
    """A connection's SIP stream ``on_wire``: its :class:`Tap`, or None when the taps are off.

    Args:
        taps: the recorder's ``taps``.
        side: "external" (federation port, partner legs) or "internal" (clients port).
        local / remote: the Edge's end and the other end of the connection.
        peer: the connection's name in the records' ``Peer:`` (as in its TF_DIAG ones).
        connection: its id (the ``ms-received-cid``); None names a partner leg ``leg-N``.
    """
    return None if taps is None else taps.tap(side, local, remote, peer, connection)


class WireTaps:
    """The trace file and the capture of one Edge (module docstring).

    Args:
        trace: where ``trace.log`` goes (appended to), or None for no trace.
        pcap: the capture file (replaced), or None for no capture.
        machine / pid / tid: the records' ``[machine\\machine]pid.tid``.
        next_seq: the recorder's sequence counter (shared with its TF_DIAG records).
        notice: reports a write failure (stderr and console).
        seed: seeds the correlation ids (``[edge] seed``); None: random.

    Raises:
        FedsimError: a file cannot be created (one line: which, why, what to do).
    """

    def __init__(
        self,
        *,
        trace: Path | None,
        pcap: Path | None,
        machine: str,
        pid: int,
        tid: int,
        next_seq: Callable[[], int],
        notice: Callable[[str], None],
        seed: int | None = None,
    ) -> None:
        self.machine = machine
        self.pid = pid
        self.tid = tid
        self.next_seq = next_seq
        self.notice = notice
        # Its own stream (as fedsim run seeds each part of a lab): never the Edge's draws.
        self._rng = random.Random(None if seed is None else f"{seed}/trace")
        self._transactions: dict[TransactionKey, int] = {}
        self._instance = 0
        self._legs = 0
        #: Messages the capture could not hold (their addresses are not IP addresses).
        self.pcap_skipped = 0
        self._pcap_failing = False
        self._trace: _TraceFile | None = None
        self._pcap: PcapWriter | None = None
        if trace is not None:
            try:
                self._trace = _TraceFile(trace, notice)
            except OSError as exc:
                raise FedsimError(
                    f"cannot write the trace {trace}: {exc.strerror or exc} "
                    "(give --log-dir a directory you can write)"
                ) from None
        if pcap is not None:
            try:
                self._pcap = PcapWriter.create(str(pcap))
            except OSError as exc:
                if self._trace is not None:
                    self._trace.close()
                raise FedsimError(
                    f"cannot write the capture {pcap}: {exc.strerror or exc} "
                    "(give --pcap a file in a directory you can write)"
                ) from None

    @property
    def tracing(self) -> bool:
        """Whether ``trace.log`` is written."""
        return self._trace is not None

    @property
    def trace_lost(self) -> int:
        """Trace records that could not be written."""
        return 0 if self._trace is None else self._trace.lost

    def tap(
        self,
        side: Side,
        local: tuple[str, int],
        remote: tuple[str, int],
        peer: str,
        connection: str | None = None,
    ) -> Tap:
        """A new connection's tap; without a ``connection`` id it is named ``leg-N``."""
        if connection is None:
            self._legs += 1
            connection = f"leg-{self._legs}"
        return Tap(self, side, local, remote, peer, connection)

    def correlation(self, key: TransactionKey | None) -> int:
        """The ``Trace-Correlation-Id`` of a transaction (a new one for an unknown key)."""
        if key is None:
            return self._rng.getrandbits(32)
        known = self._transactions.get(key)
        if known is None:
            known = self._transactions[key] = self._rng.getrandbits(32)
            if len(self._transactions) > MAX_TRANSACTIONS:
                del self._transactions[next(iter(self._transactions))]
        return known

    def edge_record(
        self, template: EdgeLogTemplate, request: Request, *, stamp: str, seq: int, drawn: int
    ) -> str:
        """A TF_DIAG record of ``request``, rendered and put in the trace.

        ``drawn`` is the correlation id the Edge's RNG drew for it (drawn whether or not
        it is used, so the wire's randomness stays the same); with the trace on the
        record carries its transaction's ``Trace-Correlation-Id`` instead.
        """
        number, method = request.cseq
        correlation = drawn
        if self._trace is not None:
            key = transaction_key(call_id=request.call_id, number=number, method=method)
            correlation = self.correlation(key)
        text = template.render(
            stamp=stamp,
            seq=seq,
            correlation_id=correlation,
            start_line=request.start_line,
            call_id=request.call_id,
            cseq=f"{number} {method}",
        )
        self.record(text)
        return text

    def message(self, message: WireMessage, peer: str) -> None:
        """One message the Edge read or wrote: a TF_PROTOCOL record, and packets."""
        trace = self._trace
        if trace is not None:
            self._instance = (self._instance + 1) & 0xFFFFFFFF
            trace.pending.append(
                format_protocol_record(
                    message,
                    machine=self.machine,
                    pid=self.pid,
                    tid=self.tid,
                    seq=self.next_seq(),
                    correlation_id=self.correlation(transaction_key(message.data)),
                    instance_id=self._instance,
                    peer=peer,
                )
            )
        pcap = self._pcap
        if pcap is not None:
            try:
                pcap.write(message)
            except ValueError:
                self.pcap_skipped += 1  # not an IP address: nothing a capture can carry
            except OSError as exc:
                self._pcap_failed(exc)

    def record(self, text: str) -> None:
        """A TF_DIAG or TF_COMPONENT record, already rendered, in its place in the trace."""
        if self._trace is not None:
            self._trace.pending.append(text)

    def component(
        self,
        text: str,
        result: ResultCode | None,
        *,
        request: Request | None,
        level: str,
        location: str,
    ) -> None:
        """A ``TF_COMPONENT`` record (reference §4.1): the component's ``Exit - ...`` line
        and, with ``result``, the diagnostic block the reference shows after it
        (``LogType: diagnostic``, Severity, Text, Result-Code and, given the request,
        its start line, Call-ID and CSeq). The trace's alone: ``edge.log`` keeps TF_DIAG.
        """
        if self._trace is None:
            return
        block: list[tuple[str, str]] = []
        if result is not None:
            block += [("LogType", "diagnostic"), ("Severity", result.severity)]
            block += [("Text", result.text), ("Result-Code", f"{result.hex} {result.symbol}")]
            if request is not None:
                number, method = request.cseq
                block += [("SIP-Start-Line", request.start_line), ("SIP-Call-ID", request.call_id)]
                block.append(("SIP-CSeq", f"{number} {method}"))
        self._trace.pending.append(
            format_component_record(
                level=level,
                machine=self.machine,
                pid=self.pid,
                tid=self.tid,
                when=time.time(),
                seq=self.next_seq(),
                text=text,
                result=result,
                location=location,
                # The reference's "( 00000000028FDD70 )" is an object's address: the request's.
                object_id=0 if request is None else id(request),
                diagnostic=block,
            )
        )

    def closed(self, connection: str, when: float) -> None:
        """A connection ended (the capture's FINs)."""
        if self._pcap is not None:
            try:
                self._pcap.connection_closed(connection, when)
            except OSError as exc:
                self._pcap_failed(exc)

    def flush_trace(self) -> None:
        """Write what the trace holds (the recorder's flush of held events calls this)."""
        if self._trace is not None:
            self._trace.flush()

    async def flush_every(self, seconds: float) -> None:
        """Write what both files hold every ``seconds``, until cancelled."""
        while True:
            await trio.sleep(seconds)
            self.flush()

    def flush(self) -> None:
        """Write what both files hold."""
        if self._trace is not None:
            self._trace.flush()
        if self._pcap is not None:
            try:
                self._pcap.flush()
            except OSError as exc:
                self._pcap_failed(exc)
            else:
                self._pcap_failing = False

    def close(self) -> None:
        """Write the rest and close both files."""
        if self._trace is not None:
            self._trace.close()
        if self._pcap is not None:
            try:
                self._pcap.close()
            except OSError as exc:
                self._pcap_failed(exc)

    def _pcap_failed(self, exc: OSError) -> None:
        if not self._pcap_failing:
            self._pcap_failing = True
            self.notice(
                f"fedsim: warning: cannot write the capture: {exc.strerror or exc}; "
                "the Edge keeps answering, the capture misses what it could not write"
            )
