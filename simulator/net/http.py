"""Just enough HTTP/1.0-1.1 for CRLs: a GET request reader, responses, a response reader.

Sans-I/O. fedsim serves the lab CAs' CRLs (RFC 5280 §4.2.1.13: a CRL
distribution point is an ``http://`` URL; RFC 2585 §3: the body is the DER CRL,
``application/pkix-crl``) and the Edge fetches its peers' CRLs. The live page
(:mod:`simulator.ui.http`) speaks HTTP/1.1 through h11, for keep-alive, bodies
and event streams; a CRL needs one GET and a close in each direction, so this
module reads exactly that (RFC 9112), sans-I/O, for the server and the fetcher:

* a request: ``METHOD SP target SP HTTP/1.x CRLF``, header fields, an empty
  line; no body (GET and HEAD carry none); every answer closes the connection
  (``Connection: close``), so there is no pipelining or keep-alive to get wrong;
* a response: status line, header fields, then the body up to Content-Length or
  the end of the connection.

Anything else is an :class:`HttpError` carrying the status to answer (400, 405,
414, 431, 505) and the connection is closed: a browser, ``curl`` or Windows'
CryptoAPI gets its CRL; a port scanner, a TLS ClientHello or random bytes get a
400 and a close.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: Longest request line and header block read (RFC 9112 §3: "at least 8000 octets").
MAX_REQUEST_BYTES = 8192
#: Largest response body a CRL fetch reads (a lab CRL is a few hundred bytes).
MAX_RESPONSE_BYTES = 1 << 20
#: The methods the CRL server answers (RFC 9110 §9.3.1-2).
METHODS = ("GET", "HEAD")

_REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    414: "URI Too Long",
    431: "Request Header Fields Too Large",
    505: "HTTP Version Not Supported",
}
# RFC 9110 §5.6.2 token; RFC 9112 §3.2 origin-form target (printable, no spaces).
_TOKEN = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_REQUEST_LINE = re.compile(rb"(?P<method>[^ ]+) (?P<target>[^ ]+) (?P<version>HTTP/\d\.\d)")
_STATUS_LINE = re.compile(rb"HTTP/1\.[01] (?P<status>\d{3})(?: [^\r\n]*)?")
_TARGET = re.compile(r"/[!-~]*")


class HttpError(Exception):
    """A request the server refuses; ``status`` is what to answer before closing."""

    def __init__(self, status: int, why: str) -> None:
        super().__init__(f"{status} {_REASONS.get(status, '')}: {why}")
        self.status = status
        self.why = why


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpRequest:
    """A request read off the wire: method, origin-form target, version, header fields."""

    method: str
    target: str
    version: str
    headers: tuple[tuple[str, str], ...]

    @property
    def path(self) -> str:
        """The target without its query."""
        return self.target.split("?", 1)[0]


def read_request(data: bytes) -> HttpRequest | None:
    """The request whose head ``data`` starts with, or None while the head is incomplete.

    Raises:
        HttpError: the head is not an HTTP/1.x GET or HEAD request (status 400,
            405, 414, 431 or 505), so the caller answers and closes.
    """
    end = data.find(b"\r\n\r\n")
    if end < 0:
        if len(data) > MAX_REQUEST_BYTES:
            line_end = data.find(b"\r\n")
            if line_end < 0:
                raise HttpError(414, "no request line within the limit")
            raise HttpError(431, "the header block is too large")
        if data and not data[:1].isalpha():
            raise HttpError(400, "not an HTTP request")  # e.g. a TLS ClientHello
        return None
    if end > MAX_REQUEST_BYTES:
        raise HttpError(431, "the header block is too large")
    lines = data[:end].split(b"\r\n")
    match = _REQUEST_LINE.fullmatch(lines[0])
    if match is None:
        raise HttpError(400, "malformed request line")
    version = match["version"].decode("ascii")
    if version not in ("HTTP/1.0", "HTTP/1.1"):
        raise HttpError(505, f"{version} is not spoken here")
    method = match["method"]
    if not _TOKEN.fullmatch(method):
        raise HttpError(400, "malformed method")
    target = match["target"].decode("ascii", "replace")
    if not _TARGET.fullmatch(target):
        raise HttpError(400, "the target is not an absolute path")
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        if not colon or not _TOKEN.fullmatch(name):
            raise HttpError(400, "malformed header field")
        headers.append((name.decode("ascii"), value.strip().decode("latin-1")))
    if version == "HTTP/1.1" and not any(n.lower() == "host" for n, _ in headers):
        raise HttpError(400, "an HTTP/1.1 request needs a Host header (RFC 9112 §3.2)")
    if method.decode("ascii") not in METHODS:
        raise HttpError(405, f"{method.decode('ascii', 'replace')} is not served")
    return HttpRequest(
        method=method.decode("ascii"), target=target, version=version, headers=tuple(headers)
    )


def response(
    status: int,
    body: bytes = b"",
    *,
    content_type: str = "text/plain; charset=utf-8",
    head: bool = False,
    extra: tuple[tuple[str, str], ...] = (),
) -> bytes:
    """An HTTP/1.1 response that closes the connection (``head``: headers only, for HEAD)."""
    lines = [
        f"HTTP/1.1 {status} {_REASONS.get(status, 'Unknown')}",
        f"Content-Type: {content_type}",
        f"Content-Length: {len(body)}",
        "Connection: close",
        *(f"{name}: {value}" for name, value in extra),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii") + (b"" if head else body)


def error_response(error: HttpError) -> bytes:
    """The answer to a refused request."""
    extra = (("Allow", ", ".join(METHODS)),) if error.status == 405 else ()
    return response(error.status, f"{error.why}\n".encode(), extra=extra)


def get_request(host: str, port: int, path: str) -> bytes:
    """The GET a client sends for ``http://host:port/path`` (one request, then close)."""
    authority = host if port == 80 else f"{host}:{port}"
    return (
        f"GET {path} HTTP/1.1\r\nHost: {authority}\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    ).encode("ascii")


def read_response(data: bytes, *, complete: bool) -> tuple[int, bytes] | None:
    """(status, body) of the response ``data`` holds, or None while more is needed.

    Args:
        data: what arrived so far.
        complete: the server closed the connection (the body then ends here when
            there is no Content-Length).

    Raises:
        HttpError: not an HTTP/1.x response, or a body larger than the limit.
    """
    end = data.find(b"\r\n\r\n")
    if end < 0:
        if complete or len(data) > MAX_REQUEST_BYTES:
            raise HttpError(400, "no complete response head")
        return None
    lines = data[:end].split(b"\r\n")
    match = _STATUS_LINE.fullmatch(lines[0])
    if match is None:
        raise HttpError(400, "not an HTTP/1.x status line")
    length: int | None = None
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            text = value.strip()
            if not text.isdigit():
                raise HttpError(400, "malformed Content-Length")
            length = int(text)
    body = data[end + 4 :]
    if length is not None:
        if length > MAX_RESPONSE_BYTES:
            raise HttpError(400, f"a {length}-byte body is over the limit")
        if len(body) < length:
            if complete:
                raise HttpError(400, "the connection closed before the body ended")
            return None
        return int(match["status"]), body[:length]
    if len(body) > MAX_RESPONSE_BYTES:
        raise HttpError(400, "the body is over the limit")
    return (int(match["status"]), body) if complete else None


def split_url(url: str) -> tuple[str, int, str]:
    """``http://host[:port]/path`` as (host, port, path).

    Raises:
        ValueError: not an ``http://`` URL fedsim can fetch.
    """
    match = re.fullmatch(r"(?i)http://(\[[0-9a-f:.]+\]|[^/:\s]+)(?::(\d{1,5}))?(/[!-~]*)?", url)
    if match is None:
        raise ValueError(f"not an http:// URL: {url!r}")
    host = match[1].strip("[]")
    port = int(match[2]) if match[2] else 80
    if not 1 <= port <= 65535:
        raise ValueError(f"port {port} is out of range in {url!r}")
    return host, port, match[3] or "/"
