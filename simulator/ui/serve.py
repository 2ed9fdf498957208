"""``fedsim serve --ui``: the live page's routes, its push, and an exercise's lab reloads.

Routes (everything else is 404; a method a route does not take is 405):

==========================  ===============================================================
``GET /``                   the page (``?call=N`` selects a call: works without JavaScript)
``GET /app.js``             the page's script (the push and the clicks)
``GET /events``             server-sent events: ``row`` (a new call's row), ``exercise``,
                            ``lab`` and ``header`` (panels after a reload)
``GET /call/N``             call N's three columns, ladder and files (HTML)
``GET /download/N/FILE``    one of call N's files (messages, Expressway log, Edge record, event)
``POST /place``             place the lab's ``[[calls]]`` entry ``call=N``
``POST /exercise/hint``     exercise mode: reveal the next hint
``POST /exercise/edit``     exercise mode: change DNS records and certificates (validated)
``POST /exercise/check``    exercise mode: place every call that defines "fixed"
==========================  ===============================================================

A POST answers JSON when asked (``Accept: application/json``, the script
does), else ``303`` back to the page. The page shows only what the lab already
prints (its lab file, its logs, the calls' messages); it changes nothing but an
exercise's lab. Requests must name this server in ``Host`` (a page elsewhere
cannot reach it through DNS rebinding) and a POST from a browser must come from
this page's origin.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import trio

from simulator.errors import FedsimError
from simulator.lab import Lab
from simulator.run.model import CallReport
from simulator.run.runner import LabSession, serve_lab_session
from simulator.ui.exercise import (
    ExerciseState,
    check_lab_text,
    edit_lab_text,
    form_edits,
)
from simulator.ui.http import (
    EventStream,
    HttpRequest,
    HttpResponse,
    HttpServer,
    sse_event,
    text_response,
)
from simulator.ui.live import LiveCalls, live_views
from simulator.ui.render import (
    APP_JS,
    CSP,
    detail_html,
    exercise_html,
    lab_html,
    page_html,
    row_html,
    where_html,
)

LOGGER = logging.getLogger(__name__)
#: Seconds between two pushes of new rows (a burst of calls is one push).
PUSH_SECONDS = 0.2
#: Rows one push sends at most (a browser left behind under load reloads for the rest).
PUSH_ROWS = 50
#: Events queued for one browser before it is dropped as too slow.
STREAM_BUFFER = 256
#: Seconds a request waits for an exercise's lab to restart after a change, at most.
RELOAD_SECONDS = 20.0
#: Seconds between two looks at an exercise's lab file.
WATCH_SECONDS = 0.5

HTML = "text/html; charset=utf-8"


@dataclass(frozen=True, slots=True)
class _Stream:
    send: trio.MemorySendChannel[bytes]


class LiveUi:
    """The state behind the page: the running lab, its calls, the exercise (module docstring).

    Args:
        lab: the lab being served.
        feed: the rows (subscribed to the Edge's recorder by whoever starts the Edge).
        exercise: the exercise being worked on, or None (then nothing can be edited).
    """

    def __init__(self, lab: Lab, feed: LiveCalls, *, exercise: ExerciseState | None = None) -> None:
        self.lab = lab
        self.feed = feed
        self.exercise = exercise
        self.session: LabSession | None = None
        self.hosts: set[str] | None = None
        self._streams: list[_Stream] = []
        self._reload = trio.Event()
        self._ready = trio.Event()
        self._watched = trio.Event()
        self._applied: str | None = None
        self._edge_names: tuple[str, ...] = ()

    # -- the running lab -------------------------------------------------------------

    def running(self, session: LabSession) -> None:
        """The lab (re)started: later calls go to ``session``."""
        self.session = session
        self.lab = session.lab if self.exercise is None else self.exercise.lab
        self._ready.set()
        self._edge_names = session.edge_names
        self.broadcast("header", where_html(self.lab, self.where()))
        self.broadcast("lab", lab_html(session.facts))

    def where(self) -> list[tuple[str, str]]:
        s = self.session
        if s is None:
            return [("lab", "starting")]
        a = s.addresses
        return [
            ("federation", f"{a.federation[0]}:{a.federation[1]}"),
            ("clients", f"{a.clients[0]}:{a.clients[1]}"),
            ("lab DNS", f"{a.dns[0]}:{a.dns[1]}"),
            ("logs", str(a.log_dir)),
        ]

    def listening(self, host: str, port: int) -> None:
        """The page's own address: requests must name it (DNS rebinding)."""
        if host in ("0.0.0.0", "::", ""):
            self.hosts = None  # reachable under any name the network gives it
            return
        shown = f"[{host}]" if ":" in host else host
        self.hosts = {f"{shown}:{port}", f"localhost:{port}"}
        if host == "127.0.0.1":
            self.hosts.add(f"[::1]:{port}")

    # -- the push ----------------------------------------------------------------------

    def broadcast(self, kind: str, data: str) -> None:
        """Queue one event for every browser (one too far behind is dropped)."""
        chunk = sse_event(kind, data)
        for stream in list(self._streams):
            try:
                stream.send.send_nowait(chunk)
            except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
                self._streams.remove(stream)
                stream.send.close()

    async def push_rows(self) -> None:
        """Every :data:`PUSH_SECONDS`, send the new rows to the browsers (forever)."""
        while True:
            if not self._streams:
                # Nothing parsed nor woken while nobody watches: the page drains on demand.
                self._watched = trio.Event()
                await self._watched.wait()
            await trio.sleep(PUSH_SECONDS)
            new = self.feed.take_new()
            for row in new[-PUSH_ROWS:]:
                self.broadcast("row", row_html(row))

    def _subscribe(self) -> EventStream:
        send, receive = trio.open_memory_channel[bytes](STREAM_BUFFER)
        stream = _Stream(send)
        if not self._streams:
            self.feed.take_new()  # rows before this browser came are on its page already
        self._streams.append(stream)
        self._watched.set()

        def closed() -> None:
            if stream in self._streams:
                self._streams.remove(stream)

        return EventStream(channel=receive, closed=closed)

    # -- requests ----------------------------------------------------------------------

    async def handle(self, request: HttpRequest) -> HttpResponse | EventStream:
        """Answer one request (module docstring)."""
        host = request.headers.get("host", "")
        if self.hosts is not None and host not in self.hosts:
            return text_response(421, f"this server answers to {sorted(self.hosts)[0]} only")
        parts = [p for p in request.path.split("/") if p]
        route = parts[0] if parts else ""
        if request.method == "POST":
            origin = request.headers.get("origin")
            if origin is not None and origin != f"http://{host}":
                return text_response(403, "a POST must come from this page")
            return await self._post(route, parts, request)
        if request.method not in ("GET", "HEAD"):
            return text_response(405, f"{request.method} is not served here")
        if route == "":
            return self._page(request)
        if route == "app.js" and len(parts) == 1:
            return HttpResponse(
                status=200, body=APP_JS.encode(), content_type="text/javascript; charset=utf-8"
            )
        if route == "events" and len(parts) == 1:
            return self._subscribe()
        if route == "call" and len(parts) == 2 and parts[1].isdigit():
            html = self._detail(int(parts[1]))
            if html is None:
                return text_response(404, f"no call {parts[1]} (only the last rows are kept)")
            return HttpResponse(status=200, body=html.encode(), content_type=HTML)
        if route == "download" and len(parts) == 3 and parts[1].isdigit():
            return self._download(int(parts[1]), parts[2])
        return text_response(404, f"nothing at {request.path}")

    def _page(self, request: HttpRequest) -> HttpResponse:
        self.feed.drain()
        selected = request.query.get("call", "")
        detail = self._detail(int(selected)) if selected.isdigit() else None
        facts = self.session.facts if self.session is not None else None
        html = page_html(
            lab=self.lab,
            where=self.where(),
            rows=list(self.feed.rows),
            detail=detail,
            facts=facts,
            exercise=self.exercise,
        )
        return HttpResponse(
            status=200,
            body=html.encode(),
            content_type=HTML,
            headers=(("Content-Security-Policy", CSP),),
        )

    def _detail(self, number: int) -> str | None:
        row = self.feed.row(number)
        if row is None:
            return None
        facts = self.session.facts if self.session is not None else None
        report, views = live_views(row, facts, edge_cert_names=self._edge_names)
        return detail_html(row, report, views)

    def _download(self, number: int, name: str) -> HttpResponse:
        row = self.feed.row(number)
        if row is None:
            return text_response(404, f"no call {number}")
        facts = self.session.facts if self.session is not None else None
        _report, views = live_views(row, facts, edge_cert_names=self._edge_names)
        for d in views.downloads:
            if d.name == name:
                return HttpResponse(
                    status=200,
                    body=d.text.encode(),
                    content_type=f"{d.media_type}; charset=utf-8",
                    headers=(("Content-Disposition", f'attachment; filename="{d.name}"'),),
                )
        return text_response(404, f"call {number} has no file {name}")

    async def _post(self, route: str, parts: list[str], request: HttpRequest) -> HttpResponse:
        form = request.form()
        answer: dict[str, object] = {}
        status = 200
        if route == "place" and len(parts) == 1:
            number = form.get("call", "")
            if not number.isdigit() or not 1 <= int(number) <= len(self.lab.calls):
                status, answer["error"] = 400, f"no call {number!r} in this lab"
            else:
                row = await self.place(int(number))
                answer["call"] = row
        elif route == "exercise" and len(parts) == 2 and self.exercise is not None:
            action = parts[1]
            if action == "hint":
                if self.exercise.more_hints:
                    self.exercise.hints_shown += 1
            elif action == "edit":
                self.edit(form)
                with trio.move_on_after(RELOAD_SECONDS):
                    await self._ready.wait()
            elif action == "check":
                for n in self.exercise.calls:
                    answer["call"] = await self.place(n)
            else:
                return text_response(404, f"nothing at {request.path}")
            self.broadcast("exercise", exercise_html(self.exercise))
            answer["exercise"] = exercise_html(self.exercise)
            answer["error"] = self.exercise.error
        elif route == "exercise":
            return text_response(403, "edits are for exercises only (fedsim serve --exercise)")
        else:
            return text_response(404, f"nothing at {request.path}")
        if "application/json" in request.headers.get("accept", ""):
            return HttpResponse(
                status=status,
                body=json.dumps(answer).encode(),
                content_type="application/json",
            )
        if status != 200:
            return text_response(status, str(answer.get("error")))
        where = f"/?call={answer['call']}" if "call" in answer else "/"
        return HttpResponse(status=303, headers=(("Location", where),))

    # -- actions -----------------------------------------------------------------------

    async def place(self, number: int) -> int:
        """Place call ``number`` of the lab as it runs now; returns its row."""
        with trio.move_on_after(RELOAD_SECONDS):
            await self._ready.wait()  # a reloading exercise lab: wait for the new one
        session = self.session
        if session is None:
            raise FedsimError("the lab is not running yet")
        generation = self.exercise.generation if self.exercise is not None else 0
        report: CallReport = await session.call(number)
        if self.exercise is not None and self.exercise.generation == generation:
            self.exercise.results[number] = report
            self.broadcast("exercise", exercise_html(self.exercise))
        row = self.feed.attach(report)
        return row.number

    def edit(self, form: dict[str, str]) -> None:
        """Apply the page's edits to the exercise's lab file, if the loader accepts them."""
        state = self.exercise
        assert state is not None
        try:
            text = state.work.read_text(encoding="utf-8")
            records, certs = form_edits(form, state.lab)
            new = edit_lab_text(text, records=records, certs=certs)
            if new == text:
                state.error = None
                return
            lab = check_lab_text(new, path=state.work)
            state.work.write_text(new, encoding="utf-8")
        except (FedsimError, OSError) as exc:
            state.error = f"not applied: {exc}"
            return
        self._apply(lab, new)

    def _apply(self, lab: Lab, text: str) -> None:
        assert self.exercise is not None
        self._applied = text
        self.exercise.reloaded(lab)
        self.lab = lab
        self._ready = trio.Event()
        self._reload.set()

    async def watch(self) -> None:
        """Reload the exercise's lab when its file changes (and the loader accepts it)."""
        state = self.exercise
        assert state is not None
        last: str | None = None
        while True:
            await trio.sleep(WATCH_SECONDS)
            try:
                text = state.work.read_text(encoding="utf-8")
            except OSError as exc:
                text = f"\0{exc}"
            if text == last:
                continue
            last = text
            if self._applied is None:
                self._applied = text
            if text == self._applied:
                continue
            try:
                lab = check_lab_text(text, path=state.work)
            except FedsimError as exc:
                state.error = f"{state.work} not reloaded: {exc}"
                self._applied = text
                self.broadcast("exercise", exercise_html(state))
                continue
            self._apply(lab, text)
            self.broadcast("exercise", exercise_html(state))

    async def run_exercise(
        self,
        work_dir: Path,
        *,
        on_start: Callable[[LabSession], None] | None = None,
        task_status: trio.TaskStatus[LabSession] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Serve the exercise's lab, restarting it whenever it is reloaded (forever)."""
        state = self.exercise
        assert state is not None
        started = False
        async with trio.open_nursery() as outer:
            outer.start_soon(self.watch)
            while True:
                async with trio.open_nursery() as nursery:
                    session: LabSession = await nursery.start(
                        partial(serve_lab_session, observe=self.feed.observe, watch=self.feed.wire),
                        state.lab,
                        state.name,
                        work_dir,
                    )
                    self.running(session)
                    if on_start is not None:
                        on_start(session)
                    if not started:
                        started = True
                        task_status.started(session)
                    await self._reload.wait()
                    self._reload = trio.Event()
                    nursery.cancel_scope.cancel()


def start_exercise(source: Path, log_dir: Path) -> ExerciseState:
    """Copy exercise ``source`` to ``log_dir/exercise/`` and load the copy.

    Raises:
        FedsimError: the file is not an exercise (or not a valid lab).
    """
    work = log_dir / "exercise" / source.name
    try:
        text = source.read_text(encoding="utf-8")
        check_lab_text(text, path=source, what="an exercise")
        work.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, work)
    except OSError as exc:
        raise FedsimError(f"cannot set up exercise {source}: {exc.strerror or exc}") from None
    lab = check_lab_text(text, path=work)
    return ExerciseState(name=source.stem, source=source, work=work, lab=lab)


async def serve_ui(
    ui: LiveUi,
    host: str,
    port: int,
    *,
    report: Callable[..., None],
    task_status: trio.TaskStatus[tuple[str, int]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the live page on ``host:port`` (0: a free port) and push rows, until cancelled."""
    server = HttpServer(ui.handle, report=report)
    async with trio.open_nursery() as nursery:
        bound = await nursery.start(server.serve, host, port)
        ui.listening(*bound)
        nursery.start_soon(ui.push_rows)
        task_status.started(bound)


__all__ = ["LiveUi", "serve_ui", "start_exercise"]
