"""The outbound relay's tables: transaction states, matching, dialogs, and the order of
what the partner sends behind a final response (sans sockets)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import trio
import trio.testing

from simulator.edge.transactions import (
    TX_STEPS,
    Dialog,
    Lost,
    RelayTable,
    TxState,
    tx_step,
)
from simulator.sip import Headers, Request, Response


@dataclass(eq=False)
class Conn:
    label: str


def request(method: str, call_id: str = "c1", cseq: int = 1) -> Request:
    return Request(
        method=method,
        uri="sip:bob@far.lab",
        headers=Headers(
            [
                ("Via", "SIP/2.0/TLS sip.skype.lab:5061;branch=z9hG4bKedge1"),
                ("From", "<sip:alice@skype.lab>;tag=a"),
                ("To", "<sip:bob@far.lab>"),
                ("Call-ID", call_id),
                ("CSeq", f"{cseq} {method}"),
            ]
        ),
    )


def response(status: int, method: str, call_id: str = "c1") -> Response:
    return Response(
        status=status,
        reason="OK" if status == 200 else "Reason",
        headers=Headers(
            [
                ("Via", "SIP/2.0/TLS sip.skype.lab:5061;branch=z9hG4bKedge1"),
                ("From", "<sip:alice@skype.lab>;tag=a"),
                ("To", "<sip:bob@far.lab>;tag=b"),
                ("Call-ID", call_id),
                ("CSeq", f"1 {method}"),
            ]
        ),
    )


@pytest.mark.parametrize(("state", "event"), sorted(TX_STEPS, key=str))
def test_every_listed_step_is_legal(state: TxState, event: str) -> None:
    assert tx_step(state, event) is TX_STEPS[state, event]


@pytest.mark.parametrize(
    ("state", "event"),
    [
        (TxState.COMPLETED, "final"),
        (TxState.COMPLETED, "provisional"),
        (TxState.LOST, "final"),
        (TxState.COMPLETED, "lost"),
        (TxState.CALLING, "retransmit"),
    ],
)
def test_any_other_step_is_refused_with_the_state_in_the_message(
    state: TxState, event: str
) -> None:
    with pytest.raises(ValueError, match=state.value):
        tx_step(state, event)


def test_a_response_finds_its_transaction_by_branch_and_the_invite_by_the_clients_key() -> None:
    table: RelayTable[Conn, Conn] = RelayTable()
    partner = Conn("partner")
    tx = table.open(
        branch="z9hG4bKedge1", partner=partner, forwarded=request("INVITE"), client_key=("c1", "k")
    )
    assert table.invite_of("c1", "k") is tx
    assert not table.deliver("z9hG4bKother", response(200, "INVITE"))
    delivered = []
    for status in (180, 200):
        assert table.deliver("z9hG4bKedge1", response(status, "INVITE"))
        delivered.append(tx.final_delivered)
    assert delivered == [False, True]
    answers = [tx.answers.receive_nowait(), tx.answers.receive_nowait()]
    assert [r.status for r in answers if isinstance(r, Response)] == [180, 200]
    table.close(tx)
    assert tx.closed.is_set()
    assert table.invite_of("c1", "k") is None
    assert not table.deliver("z9hG4bKedge1", response(200, "INVITE"))


def test_a_200_to_our_cancel_on_the_same_branch_is_not_the_invites_final() -> None:
    table: RelayTable[Conn, Conn] = RelayTable()
    tx = table.open(
        branch="z9hG4bKedge1",
        partner=Conn("p"),
        forwarded=request("INVITE"),
        client_key=("c1", "k"),
    )
    table.deliver("z9hG4bKedge1", response(200, "CANCEL"))
    assert not tx.final_delivered


def test_a_lost_partner_fails_its_transactions_and_ends_its_dialogs_only() -> None:
    table: RelayTable[Conn, Conn] = RelayTable()
    gone, kept, client = Conn("gone"), Conn("kept"), Conn("client")
    tx = table.open(branch="b1", partner=gone, forwarded=request("INVITE"), client_key=("c1", "k"))
    other = table.open(
        branch="b2", partner=kept, forwarded=request("OPTIONS", "c2"), client_key=("c2", "k")
    )
    table.start_dialog("d1", Dialog(partner=gone, client=client, domain="far.lab"))
    table.start_dialog("d2", Dialog(partner=kept, client=client, domain="far.lab"))
    table.partner_lost(gone, None, True)
    assert tx.answers.receive_nowait() == Lost(None, True)
    with pytest.raises(trio.WouldBlock):
        other.answers.receive_nowait()
    assert (table.dialog("d1"), table.dialog("d2") is not None) == (None, True)


def test_reverse_routes_are_taken_once() -> None:
    table: RelayTable[Conn, Conn] = RelayTable()
    partner = Conn("p")
    table.route_back("z9hG4bKback", partner)
    assert table.take_route_back("z9hG4bKback") is partner
    assert table.take_route_back("z9hG4bKback") is None
    assert table.take_route_back(None) is None


async def test_a_request_right_behind_a_final_waits_until_that_final_was_relayed() -> None:
    """The partner's NOTIFY read right after its 200 to SUBSCRIBE goes out after the 200."""
    table: RelayTable[Conn, Conn] = RelayTable()
    partner, client = Conn("p"), Conn("client")
    tx = table.open(
        branch="b1", partner=partner, forwarded=request("SUBSCRIBE"), client_key=("c1", "k")
    )
    table.deliver("b1", response(200, "SUBSCRIBE"))
    order: list[str] = []

    async def partner_reader() -> None:
        await table.after_final("c1", timeout=10)
        order.append("NOTIFY relayed" if table.dialog("c1") else "NOTIFY without a dialog")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(partner_reader)
        await trio.testing.wait_all_tasks_blocked()
        assert order == []  # still waiting: the 200 has not gone out
        # The transaction's task: the dialog, then the 200 to the client, then close.
        table.start_dialog("c1", Dialog(partner=partner, client=client, domain="far.lab"))
        order.append("200 relayed")
        table.close(tx)
    assert order == ["200 relayed", "NOTIFY relayed"]


async def test_a_request_with_no_final_in_flight_does_not_wait() -> None:
    table: RelayTable[Conn, Conn] = RelayTable()
    table.open(
        branch="b1", partner=Conn("p"), forwarded=request("SUBSCRIBE"), client_key=("c", "k")
    )
    with trio.fail_after(1):
        await table.after_final("c1", timeout=60)  # open, but no final delivered yet
        await table.after_final("other", timeout=60)


async def test_the_wait_behind_a_final_is_bounded(autojump_clock: trio.testing.MockClock) -> None:
    """A transaction that never closes (its client stopped reading) holds a request
    for the timeout, no longer."""
    table: RelayTable[Conn, Conn] = RelayTable()
    table.open(
        branch="b1", partner=Conn("p"), forwarded=request("SUBSCRIBE"), client_key=("c", "k")
    )
    table.deliver("b1", response(200, "SUBSCRIBE"))
    start = trio.current_time()
    await table.after_final("c1", timeout=32)
    assert trio.current_time() - start == pytest.approx(32)
