"""Who watches the Edge's logs (the live page): each gets every event and record, in order.

The recorder queues a written line here only while someone is subscribed (the hot
path tests one list) and hands the queue over when it flushes, right before the
reply leaves: an observer must only queue. One that raises is dropped with a
notice; the Edge never stops for it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from simulator.trace import WireMessage

#: An observer of the logs: each event line (JSON) and its Edge record (or None), once written.
Observer = Callable[[str, str | None], None]
#: A watcher of the wire (the live page): every SIP message the Edge reads or writes
#: (:mod:`simulator.edge.taps`).
Watch = Callable[[WireMessage], None]


class Observers:
    """The subscribed observers and the lines they have not seen yet.

    Args:
        notice: how a dropped observer is reported (the recorder's stderr and console).
    """

    def __init__(self, notice: Callable[[str], None]) -> None:
        self.notice = notice
        #: The observers; empty, the recorder queues nothing.
        self.subscribed: list[Observer] = []
        #: Written lines not handed over yet.
        self.pending: list[tuple[str, str | None]] = []

    def subscribe(self, observer: Observer) -> Callable[[], None]:
        """Hand ``observer`` every line written from now on; returns its unsubscribe."""
        self.subscribed.append(observer)

        def unsubscribe() -> None:
            with contextlib.suppress(ValueError):
                self.subscribed.remove(observer)

        return unsubscribe

    def notify(self) -> None:
        """Hand the pending lines to every observer (dropping one that raises)."""
        pending, self.pending = self.pending, []
        for observer in list(self.subscribed):
            try:
                for line, record in pending:
                    observer(line, record)
            except Exception as exc:  # an observer's bug never stops the Edge
                self.subscribed.remove(observer)
                self.notice(f"fedsim: an observer of the logs failed and was dropped: {exc!r}")
