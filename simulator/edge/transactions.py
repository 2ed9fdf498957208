"""The outbound relay's state: client transactions and dialogs, as tables with one owner.

The relay (:mod:`simulator.edge.outbound`) is a transaction-stateful proxy
(RFC 3261 §16). What it remembers lives here, and only here:

- **Client transactions**, one per request it forwards, under the branch of the
  Via the Edge added: a response is matched to its transaction by that branch
  and the CSeq method (§17.1.3). States follow :data:`TX_STEPS` (CALLING ->
  PROCEEDING on a 1xx -> COMPLETED on the final answer; LOST when the partner
  connection ends first). A forwarded INVITE is also found by the client's own
  (Call-ID, branch), so the client's CANCEL reaches it (§16.10).
- **Dialogs**, one per 2xx to a dialog-creating request (INVITE, SUBSCRIBE),
  by Call-ID: the partner connection and the client connection it joins, so
  the ACK, BYE or re-INVITE that follow take the same legs. A 2xx to BYE, or
  the end of its partner connection, ends it.
- **Reverse routes**: a request the partner sends inside a dialog (its BYE) is
  relayed to the client under a branch of ours; the client's answer finds its
  way back to the partner by that branch.

Order: the partner's messages are read by one task, its final responses relayed
by the transaction's own. A request the partner sends right behind the final
(the NOTIFY right after a 200 to SUBSCRIBE, RFC 6665 §4.2.1) waits until that
final has reached the client (:meth:`RelayTable.after_final`), so the client sees
them in the order the partner sent them, and the dialog exists when it arrives.
"""

from __future__ import annotations

import enum
import math
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

import trio

from simulator.sip import Request, Response

#: How many dialogs and reverse routes are remembered.
MAX_REMEMBERED = 10_000


class TxState(enum.Enum):
    """A client transaction of the relay (RFC 3261 §17.1, on a reliable transport)."""

    CALLING = "calling"
    PROCEEDING = "proceeding"
    COMPLETED = "completed"
    LOST = "lost"


#: (state, what happened) -> next state; anything else is illegal.
TX_STEPS: dict[tuple[TxState, str], TxState] = {
    (TxState.CALLING, "provisional"): TxState.PROCEEDING,
    (TxState.PROCEEDING, "provisional"): TxState.PROCEEDING,
    (TxState.CALLING, "final"): TxState.COMPLETED,
    (TxState.PROCEEDING, "final"): TxState.COMPLETED,
    (TxState.CALLING, "lost"): TxState.LOST,
    (TxState.PROCEEDING, "lost"): TxState.LOST,
}


def tx_step(state: TxState, event: str) -> TxState:
    """The state after ``event`` ("provisional", "final", "lost") in ``state``.

    Raises:
        ValueError: the event cannot happen in that state.
    """
    try:
        return TX_STEPS[state, event]
    except KeyError:
        raise ValueError(f"{event!r} is illegal in state {state.value}") from None


class Leg(Protocol):
    """A connection the relay sends on (the partner's or the client's)."""

    @property
    def label(self) -> str: ...


P = TypeVar("P", bound=Leg)
C = TypeVar("C")


@dataclass(frozen=True, slots=True)
class Lost:
    """The partner connection ended before the final answer."""

    error: BaseException | None
    received_any: bool


@dataclass(slots=True, eq=False)
class ClientTransaction(Generic[P]):
    """One request the relay forwarded and waits on (module docstring)."""

    branch: str
    method: str
    partner: P
    forwarded: Request
    client_key: tuple[str, str]
    inbox: trio.MemorySendChannel[Response | Lost]
    answers: trio.MemoryReceiveChannel[Response | Lost]
    state: TxState = TxState.CALLING
    #: A final response was delivered (it may not have reached the client yet).
    final_delivered: bool = False
    #: Set once the transaction is closed: its final (if any) was relayed.
    closed: trio.Event = field(default_factory=trio.Event)

    def advance(self, event: str) -> None:
        self.state = tx_step(self.state, event)


@dataclass(slots=True, eq=False)
class Dialog(Generic[P, C]):
    """A dialog the relay stays in: the partner leg, the client leg and the domain."""

    partner: P
    client: C
    domain: str


@dataclass(slots=True)
class RelayTable(Generic[P, C]):
    """Every transaction, dialog and reverse route of the relay (the one owner)."""

    transactions: dict[str, ClientTransaction[P]] = field(default_factory=dict)
    invites: dict[tuple[str, str], ClientTransaction[P]] = field(default_factory=dict)
    dialogs: OrderedDict[str, Dialog[P, C]] = field(default_factory=OrderedDict)
    reverse: OrderedDict[str, P] = field(default_factory=OrderedDict)

    # -- transactions ----------------------------------------------------------------

    def open(
        self, *, branch: str, partner: P, forwarded: Request, client_key: tuple[str, str]
    ) -> ClientTransaction[P]:
        """Start waiting for the answers to ``forwarded``, sent under ``branch``."""
        inbox, answers = trio.open_memory_channel[Response | Lost](math.inf)
        tx = ClientTransaction(
            branch=branch,
            method=forwarded.method,
            partner=partner,
            forwarded=forwarded,
            client_key=client_key,
            inbox=inbox,
            answers=answers,
        )
        self.transactions[branch] = tx
        if tx.method == "INVITE":
            self.invites[client_key] = tx
        return tx

    def close(self, tx: ClientTransaction[P]) -> None:
        """Forget a transaction (its final answer came, it timed out, or it was lost)."""
        self.transactions.pop(tx.branch, None)
        if self.invites.get(tx.client_key) is tx:
            del self.invites[tx.client_key]
        tx.closed.set()

    def deliver(self, branch: str | None, response: Response) -> bool:
        """Hand ``response`` to the transaction of ``branch``; False when there is none."""
        tx = self.transactions.get(branch or "")
        if tx is None:
            return False
        if response.status >= 200 and response.cseq[1] == tx.method:
            tx.final_delivered = True
        tx.inbox.send_nowait(response)
        return True

    def relaying(self, call_id: str) -> ClientTransaction[P] | None:
        """An open transaction of ``call_id`` whose final is on its way to the client."""
        for tx in self.transactions.values():
            if tx.final_delivered and tx.forwarded.call_id == call_id:
                return tx
        return None

    async def after_final(self, call_id: str, timeout: float) -> None:  # noqa: ASYNC109
        """Wait (at most ``timeout`` s) until a final of ``call_id`` being relayed was."""
        tx = self.relaying(call_id)
        if tx is not None:
            with trio.move_on_after(timeout):
                await tx.closed.wait()

    def invite_of(self, call_id: str, branch: str) -> ClientTransaction[P] | None:
        """The forwarded INVITE a client's CANCEL (same Call-ID and branch) is about."""
        return self.invites.get((call_id, branch))

    def partner_lost(self, partner: P, error: BaseException | None, received_any: bool) -> None:
        """Its connection ended: fail its waiting transactions, end its dialogs."""
        for tx in [t for t in self.transactions.values() if t.partner is partner]:
            tx.inbox.send_nowait(Lost(error, received_any))
        for call_id in [k for k, d in self.dialogs.items() if d.partner is partner]:
            del self.dialogs[call_id]

    # -- dialogs and reverse routes ----------------------------------------------------

    def start_dialog(self, call_id: str, dialog: Dialog[P, C]) -> None:
        """Remember the dialog a 2xx created (before the 2xx reaches the client)."""
        self.dialogs[call_id] = dialog
        self.dialogs.move_to_end(call_id)
        while len(self.dialogs) > MAX_REMEMBERED:
            self.dialogs.popitem(last=False)

    def dialog(self, call_id: str) -> Dialog[P, C] | None:
        return self.dialogs.get(call_id)

    def end_dialog(self, call_id: str) -> None:
        self.dialogs.pop(call_id, None)

    def route_back(self, branch: str, partner: P) -> None:
        """Remember that a request relayed to the client under ``branch`` came from ``partner``."""
        self.reverse[branch] = partner
        while len(self.reverse) > MAX_REMEMBERED:
            self.reverse.popitem(last=False)

    def take_route_back(self, branch: str | None) -> P | None:
        return self.reverse.pop(branch or "", None)
