"""The guarded connection runner: what it contains, what it lets through, who uses it."""

from __future__ import annotations

import ast
import io
from pathlib import Path

import pytest
import trio
import trio.lowlevel
import trio.testing

from simulator.net import (
    InternalError,
    contain,
    peer_label,
    run_guarded,
    stderr_reporter,
    unexpected_errors,
)

SIMULATOR = Path(__file__).resolve().parents[2] / "simulator"


class Closable(trio.abc.AsyncResource):
    """A resource that remembers being closed."""

    def __init__(self) -> None:
        self.closed = False

    async def aclose(self) -> None:
        self.closed = True


async def _raise(exc: BaseException) -> None:
    raise exc


async def _group(*excs: Exception) -> None:
    async def fail(exc: Exception) -> None:
        raise exc

    async with trio.open_nursery() as nursery:
        for exc in excs:
            nursery.start_soon(fail, exc)


PEER_CAUSED = [
    trio.BrokenResourceError("reset"),
    trio.ClosedResourceError("closed"),
    trio.TooSlowError(),
    ConnectionResetError(104, "reset"),
]


@pytest.mark.parametrize("exc", PEER_CAUSED, ids=lambda e: type(e).__name__)
async def test_peer_faults_are_contained_silently(exc: BaseException) -> None:
    reports: list[InternalError] = []
    resource = Closable()
    await run_guarded(
        lambda: _raise(exc), server="t", peer="p", report=reports.append, resource=resource
    )
    assert reports == []
    assert resource.closed


async def test_peer_faults_inside_a_group_are_contained() -> None:
    # The clients-port crash: a connection's own nursery wraps a reset in a group.
    reports: list[InternalError] = []
    await run_guarded(
        lambda: _group(trio.BrokenResourceError("reset"), ConnectionResetError()),
        server="clients",
        peer="127.0.0.1:5555",
        report=reports.append,
    )
    assert reports == []


async def test_a_bug_is_reported_once_with_its_type_and_peer() -> None:
    reports: list[InternalError] = []
    resource = Closable()
    await run_guarded(
        lambda: _group(ValueError("SRV name must be a DNS name"), trio.BrokenResourceError()),
        server="clients",
        peer="127.0.0.1:5555",
        report=reports.append,
        resource=resource,
    )
    assert len(reports) == 1
    fault = reports[0]
    assert (fault.server, fault.peer, fault.error_type, fault.count) == (
        "clients",
        "127.0.0.1:5555",
        "ValueError",
        1,
    )
    assert "SRV name must be a DNS name" in fault.describe()
    assert "Traceback" not in fault.describe()
    assert "ValueError" in fault.traceback()
    assert resource.closed


async def test_cancellation_goes_through_and_still_closes() -> None:
    reports: list[InternalError] = []
    resource = Closable()
    with trio.move_on_after(0.01) as scope:
        await run_guarded(
            trio.sleep_forever, server="t", peer="p", report=reports.append, resource=resource
        )
    assert scope.cancelled_caught
    assert reports == []
    assert resource.closed


async def test_cancellation_inside_a_group_goes_through_and_the_bug_is_reported() -> None:
    reports: list[InternalError] = []

    async def handler() -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(trio.sleep_forever)
            await trio.lowlevel.checkpoint()
            nursery.cancel_scope.cancel()  # ends cleanly: nothing to report
        async with trio.open_nursery() as nursery:
            nursery.start_soon(trio.sleep_forever)
            raise KeyError("bug")

    await run_guarded(handler, server="t", peer="p", report=reports.append)
    assert [r.error_type for r in reports] == ["KeyError"]


async def test_keyboard_interrupt_is_never_contained() -> None:
    with pytest.raises(KeyboardInterrupt):
        await run_guarded(
            lambda: _raise(KeyboardInterrupt()), server="t", peer="p", report=lambda _: None
        )


def test_contain_returns_the_value_or_reports() -> None:
    reports: list[InternalError] = []
    assert contain("dns-udp", "p", reports.append, lambda: b"reply") == b"reply"
    assert contain("dns-udp", "p", reports.append, lambda: 1 // 0) is None
    assert [r.error_type for r in reports] == ["ZeroDivisionError"]


def test_unexpected_errors_walks_nested_groups() -> None:
    group = ExceptionGroup(
        "outer", [OSError(), ExceptionGroup("inner", [TypeError("t"), trio.TooSlowError()])]
    )
    assert [type(e) for e in unexpected_errors(group)] == [TypeError]


def test_stderr_reporter_prints_one_line_and_a_traceback_only_when_asked() -> None:
    try:
        raise RuntimeError("boom")
    except RuntimeError as exc:
        fault = InternalError(server="peer", peer="[::1]:5061", error=exc)
    quiet, loud = io.StringIO(), io.StringIO()
    stderr_reporter(stream=quiet)(fault)
    stderr_reporter(debug=True, stream=loud)(fault)
    assert quiet.getvalue().count("\n") == 1
    assert "peer connection [::1]:5061: RuntimeError: boom" in quiet.getvalue()
    assert "Traceback" in loud.getvalue()


@pytest.mark.parametrize(
    ("address", "label"),
    [(("127.0.0.1", 5061), "127.0.0.1:5061"), (("::1", 5061, 0, 0), "[::1]:5061"), (None, "-")],
)
def test_peer_label(address: object, label: str) -> None:
    assert peer_label(address) == label


# --- every server goes through the guard -------------------------------------------------


def _calls(tree: ast.AST, name: str) -> list[int]:
    """Lines of calls to ``name`` (as a function or an attribute) in ``tree``."""
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if called == name:
                lines.append(node.lineno)
    return lines


def test_only_the_guard_accepts_connections() -> None:
    """A server that accepts connections without the guard fails this test.

    ``trio.serve_listeners`` and a listener's ``accept()`` may only appear in
    simulator/net/guard.py; every server calls :func:`serve_guarded` instead.
    """
    offenders = []
    for path in sorted(SIMULATOR.rglob("*.py")):
        if path == SIMULATOR / "net" / "guard.py":
            continue
        tree = ast.parse(path.read_text("utf-8"))
        for name in ("serve_listeners", "accept", "serve_tcp"):
            offenders += [f"{path.relative_to(SIMULATOR)}:{n} {name}" for n in _calls(tree, name)]
    assert offenders == []


def _names(tree: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}


def test_every_listener_is_served_through_the_guard() -> None:
    """Each module that opens TCP listeners hands them to serve_guarded."""
    listening = []
    for path in sorted(SIMULATOR.rglob("*.py")):
        tree = ast.parse(path.read_text("utf-8"))
        if _calls(tree, "open_tcp_listeners") + _calls(tree, "SocketListener"):
            listening.append(path.relative_to(SIMULATOR).as_posix())
            assert "serve_guarded" in _names(tree), f"{path} listens without serve_guarded"
    # The servers this test knows about; a new one is added here, with its fault tests.
    assert listening == [
        "bench/ceiling.py",
        "dns/server.py",
        "edge/clients.py",
        "edge/crl.py",
        "edge/inbound.py",
        "peer/uas.py",
        "ui/http.py",
    ]
