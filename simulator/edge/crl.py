"""The lab's CRLs over HTTP: fedsim's CRL server, and the Edge's CRL fetcher.

Reference 1.2 and §6: the Edge needs outbound TCP 80 to download the CRLs of its
peers' certificates (``KeepCrlsUpToDateForPeers``), and every certificate names
its CRL in a distribution point. fedsim plays both ends on loopback:

* :func:`serve_crls` answers ``GET /<ca>.crl`` with the CA's DER CRL
  (``[pki] crl_listen``; ``fedsim serve`` and ``fedsim run`` start it). Every
  connection runs through the guard (:func:`simulator.net.serve_guarded`); the
  request is read by the sans-I/O :mod:`simulator.net.http` with a size limit and
  a deadline, anything that is not a GET or HEAD is answered 4xx/505 and closed,
  so garbage, a TLS ClientHello or a silent client cost one connection only.
* :class:`CrlFetcher` fetches a distribution point for the Edge: the host is
  resolved with the Edge's own resolver (the lab DNS), one GET, the answer read
  to the end within a deadline; what came back (or None) is remembered for a
  while, as Windows caches CRLs until they are due again.

What a CRL says about a chain is decided by pure code
(:func:`simulator.pki.revocation_status`).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from functools import partial

import trio
from cryptography import x509

from simulator.dns import Resolver
from simulator.net import Reporter, serve_guarded
from simulator.net.http import (
    HttpError,
    error_response,
    get_request,
    read_request,
    read_response,
    response,
    split_url,
)
from simulator.pki import crl_urls, revocation_status
from simulator.policy import RevocationStatus

#: Seconds a client may take to send its request to the CRL server.
REQUEST_TIMEOUT = 5.0
#: Seconds the Edge gives one CRL fetch (connect, request, the whole answer).
FETCH_TIMEOUT = 3.0
#: Seconds a fetched CRL, and a failed fetch, are remembered.
KEEP_FETCHED = 300.0
KEEP_FAILED = 10.0
#: RFC 2585 §3: the media type of a DER CRL.
CRL_MEDIA_TYPE = "application/pkix-crl"


@dataclass(slots=True)
class CrlService:
    """Where the lab's CRLs are served: its listeners, the base URL, the CRLs by path.

    ``store`` maps a request path (``/lab-root.crl``) to the DER CRL; it may be
    filled after the listeners are bound (the certificates need the URL first).
    """

    listeners: list[trio.SocketListener]
    base: str
    store: MutableMapping[str, bytes] = field(default_factory=dict)


async def open_crl_service(host: str, port: int) -> CrlService:
    """Bind the CRL server's listeners; the base URL names the port actually bound."""
    listeners = await trio.open_tcp_listeners(port, host=host)
    bound = listeners[0].socket.getsockname()
    shown = f"[{bound[0]}]" if ":" in str(bound[0]) else str(bound[0])
    return CrlService(listeners=listeners, base=f"http://{shown}:{bound[1]}")


async def serve_crls(
    service: CrlService,
    *,
    report: Reporter,
    task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``service.store`` over HTTP until cancelled; report the base URL.

    Resource handling:
        The listeners are closed when this is cancelled; every connection is closed
        after one answer (or the guard closes it).
    """
    task_status.started(service.base)
    await serve_guarded(
        partial(_answer, service.store), service.listeners, server="crl", report=report
    )


async def _answer(store: Mapping[str, bytes], stream: trio.SocketStream) -> None:
    """Read one request (bounded in size and time), answer it, close."""
    data = b""
    reply: bytes | None = None
    with trio.move_on_after(REQUEST_TIMEOUT):
        while reply is None:
            chunk = await stream.receive_some(4096)
            if not chunk:
                return  # gone before a whole request: nothing to answer
            data += chunk
            try:
                request = read_request(data)
            except HttpError as exc:
                reply = error_response(exc)
                break
            if request is None:
                continue
            body = store.get(request.path)
            if body is None:
                reply = response(404, f"no CRL at {request.path[:80]}\n".encode())
            else:
                reply = response(
                    200, body, content_type=CRL_MEDIA_TYPE, head=request.method == "HEAD"
                )
    if reply is not None:
        # A client that stops reading is dropped at the deadline (TooSlowError: the guard
        # closes the connection).
        with trio.fail_after(REQUEST_TIMEOUT):
            await stream.send_all(reply)


async def fetch(
    url: str,
    resolver: Resolver,
    *,
    timeout: float = FETCH_TIMEOUT,  # noqa: ASYNC109 (one bound for connect, request and answer)
) -> bytes | None:
    """GET ``url`` (``http://host[:port]/path``); the body of a 200, else None.

    The host is an address, or a name the Edge's resolver answers. Anything that
    goes wrong (no address, refused, silent, not HTTP, not 200) is None: the
    caller reports the CRL as unreachable.
    """
    try:
        host, port, path = split_url(url)
    except ValueError:
        return None
    with trio.move_on_after(timeout):
        address = await _address(host, resolver)
        if address is None:
            return None
        try:
            stream = await trio.open_tcp_stream(address, port)
        except OSError:
            return None
        async with stream:
            try:
                await stream.send_all(get_request(host, port, path))
                data = b""
                while True:
                    chunk = await stream.receive_some(65536)
                    parsed = read_response(data + chunk, complete=not chunk)
                    data += chunk
                    if parsed is not None:
                        status, body = parsed
                        return body if status == 200 else None
            except (OSError, trio.BrokenResourceError, HttpError):
                return None
    return None


async def _address(host: str, resolver: Resolver) -> str | None:
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    answer = await resolver.addresses(host)
    return answer.addresses[0] if answer.outcome == "ok" and answer.addresses else None


class CrlFetcher:
    """The Edge's CRL cache: fetches distribution points and remembers what came back.

    Args:
        resolver: the Edge's resolver (CDP host names are looked up like any other).
        keep_fetched / keep_failed: seconds a CRL, and a failure, are remembered.
    """

    def __init__(
        self,
        resolver: Resolver,
        *,
        keep_fetched: float = KEEP_FETCHED,
        keep_failed: float = KEEP_FAILED,
        timeout: float = FETCH_TIMEOUT,
    ) -> None:
        self.resolver = resolver
        self.keep_fetched = keep_fetched
        self.keep_failed = keep_failed
        self.timeout = timeout
        self._cache: dict[str, tuple[float, bytes | None]] = {}
        self._verdicts: dict[tuple[x509.Certificate, ...], tuple[float, RevocationStatus]] = {}
        self.fetches = 0

    async def get(self, url: str) -> bytes | None:
        """The bytes at ``url`` (cached), or None when it could not be fetched."""
        now = trio.current_time()
        kept = self._cache.get(url)
        if kept is not None and kept[0] > now:
            return kept[1]
        self.fetches += 1
        data = await fetch(url, self.resolver, timeout=self.timeout)
        keep = self.keep_fetched if data is not None else self.keep_failed
        if len(self._cache) > 1024:
            self._cache.clear()
        self._cache[url] = (trio.current_time() + keep, data)
        return data

    async def status(
        self, path: Sequence[x509.Certificate], *, now: dt.datetime
    ) -> RevocationStatus:
        """What the CRLs say about a verified chain (leaf first, trusted root last).

        Remembered per chain as long as its CRLs are (a peer reconnecting for every
        call costs a dictionary lookup, not a signature check).
        """
        key = tuple(path)
        kept = self._verdicts.get(key)
        if kept is not None and kept[0] > trio.current_time():
            return kept[1]
        fetched = {url: await self.get(url) for url in crl_urls(path)}
        status = revocation_status(path, fetched, now=now)
        keep = self.keep_failed if None in fetched.values() else self.keep_fetched
        if len(self._verdicts) > 1024:
            self._verdicts.clear()
        self._verdicts[key] = (trio.current_time() + keep, status)
        return status
