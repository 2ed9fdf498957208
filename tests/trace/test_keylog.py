"""The TLS key log: every session of fedsim's contexts, 0600, and a real tcpdump capture of
the lab decrypted with it by tshark."""

from __future__ import annotations

import os
import selectors
import signal
import socket
import ssl
import stat
import struct
import subprocess
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import pytest
import trio
import trustme

from simulator.pki import (
    KEYLOG_MODE,
    PkiError,
    client_context,
    enable_keylog,
    server_context,
    use_keylog,
)

#: Upper bound for one exchange or tool; a hang is a bug, this only turns it into a failure.
LIMIT = 30
OPTIONS = (
    b"OPTIONS sip:sip.skype.lab SIP/2.0\r\n"
    b"Via: SIP/2.0/TLS 127.0.0.1:5061;branch=z9hG4bKkeylog\r\n"
    b"From: <sip:expe@steven.lab>;tag=1\r\nTo: <sip:sip.skype.lab>\r\n"
    b"Call-ID: keylog-call@127.0.0.1\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n"
    b"Content-Length: 0\r\n\r\n"
)
TLS13 = ("CLIENT_HANDSHAKE_TRAFFIC_SECRET", "SERVER_TRAFFIC_SECRET_0", "CLIENT_TRAFFIC_SECRET_0")


@pytest.fixture
def pki(tmp_path: Path) -> dict[str, Path]:
    """An Edge and a peer certificate from one CA, as PEM files."""
    ca = trustme.CA()
    files = {"ca": tmp_path / "ca.pem"}
    ca.cert_pem.write_to_path(str(files["ca"]))
    for name in ("sip.skype.lab", "vcse.steven.lab"):
        leaf = ca.issue_cert(name)
        files[f"{name}.crt"] = tmp_path / f"{name}.crt"
        files[f"{name}.key"] = tmp_path / f"{name}.key"
        leaf.cert_chain_pems[0].write_to_path(str(files[f"{name}.crt"]))
        leaf.private_key_pem.write_to_path(str(files[f"{name}.key"]))
    return files


@pytest.fixture
def no_process_keylog() -> Iterator[None]:
    yield
    use_keylog(None)


def contexts(
    pki: dict[str, Path], *, version: ssl.TLSVersion, keylog: Path | None = None
) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    server = server_context(
        cert=pki["sip.skype.lab.crt"],
        key=pki["sip.skype.lab.key"],
        trust=[pki["ca"]],
        keylog=keylog,
    )
    client = client_context(
        cert=pki["vcse.steven.lab.crt"],
        key=pki["vcse.steven.lab.key"],
        trust=[pki["ca"]],
        keylog=keylog,
    )
    client.maximum_version = version
    return server, client


async def exchange(server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext, *, port: int = 0) -> int:
    """One mutual-TLS connection on 127.0.0.1: OPTIONS in, 200 back. Returns the port."""
    listener = (await trio.open_tcp_listeners(port, host="127.0.0.1"))[0]
    bound = int(listener.socket.getsockname()[1])

    async def serve_one() -> None:
        stream = trio.SSLStream(await listener.accept(), server_ctx, server_side=True)
        received = b""
        while not received.endswith(b"\r\n\r\n"):
            received += await stream.receive_some(4096)
        await stream.send_all(b"SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n")
        await stream.aclose()

    with trio.fail_after(LIMIT):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(serve_one)
            tcp = await trio.open_tcp_stream("127.0.0.1", bound)
            client = trio.SSLStream(tcp, client_ctx, server_hostname="sip.skype.lab")
            await client.send_all(OPTIONS)
            assert (await client.receive_some(4096)).startswith(b"SIP/2.0 200 OK")
            await client.aclose()
    await listener.aclose()
    return bound


def labels(path: Path) -> set[str]:
    lines = path.read_text(encoding="ascii").splitlines()
    return {line.split()[0] for line in lines if line and not line.startswith("#")}


@pytest.mark.parametrize(
    ("version", "wanted"),
    [(ssl.TLSVersion.TLSv1_3, TLS13), (ssl.TLSVersion.TLSv1_2, ("CLIENT_RANDOM",))],
    ids=["tls13", "tls12"],
)
async def test_both_ends_log_their_session_secrets_0600(
    tmp_path: Path, pki: dict[str, Path], version: ssl.TLSVersion, wanted: tuple[str, ...]
) -> None:
    keylog = tmp_path / "keys.log"
    await exchange(*contexts(pki, version=version, keylog=keylog))
    assert stat.S_IMODE(keylog.stat().st_mode) == KEYLOG_MODE
    assert set(wanted) <= labels(keylog)


async def test_use_keylog_turns_it_on_for_every_context_built_after(
    tmp_path: Path, pki: dict[str, Path], no_process_keylog: None
) -> None:
    keylog = tmp_path / "all.log"
    use_keylog(keylog)
    assert stat.S_IMODE(keylog.stat().st_mode) == KEYLOG_MODE  # created before any session
    await exchange(*contexts(pki, version=ssl.TLSVersion.TLSv1_3))
    assert set(TLS13) <= labels(keylog)
    use_keylog(None)
    before = keylog.read_text(encoding="ascii")
    await exchange(*contexts(pki, version=ssl.TLSVersion.TLSv1_3))
    assert keylog.read_text(encoding="ascii") == before


def test_an_existing_world_readable_file_becomes_0600(tmp_path: Path) -> None:
    keylog = tmp_path / "keys.log"
    keylog.write_text("# earlier sessions\n", encoding="ascii")
    keylog.chmod(0o644)
    enable_keylog(ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT), keylog)
    assert stat.S_IMODE(keylog.stat().st_mode) == KEYLOG_MODE
    assert keylog.read_text(encoding="ascii") == "# earlier sessions\n"  # appended to, not cut


@pytest.mark.parametrize("kind", ["symlink", "directory", "missing-dir"])
def test_a_bad_path_is_one_clear_error(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "keys.log"
    if kind == "symlink":
        path.symlink_to(tmp_path / "elsewhere")
    elif kind == "directory":
        path.mkdir()
    else:
        path = tmp_path / "no" / "keys.log"
    with pytest.raises(PkiError, match="key log"):
        enable_keylog(ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT), path)
    assert not (tmp_path / "elsewhere").exists()


# --- the README's recipe: tcpdump, the key log, tshark ------------------------------------


def wait_for_line(proc: subprocess.Popen[bytes], wanted: bytes) -> None:
    """Read the process's stderr until ``wanted`` shows, with a deadline (no sleeping)."""
    assert proc.stderr is not None
    seen = b""
    deadline = time.monotonic() + LIMIT
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stderr, selectors.EVENT_READ)
        while wanted not in seen:
            left = deadline - time.monotonic()
            if left <= 0 or not selector.select(left):
                pytest.fail(f"no {wanted!r} from {proc.args!r}: {seen!r}")
            chunk = os.read(proc.stderr.fileno(), 4096)
            if not chunk:
                pytest.fail(f"{proc.args!r} ended: {seen!r}")
            seen += chunk


def teardowns(capture: Path) -> int:
    """How many TCP segments with FIN or RST a classic pcap (Ethernet, IPv4) holds so far."""
    data = capture.read_bytes()
    count, pos = 0, 24
    while pos + 16 <= len(data):
        caplen = struct.unpack("<I", data[pos + 8 : pos + 12])[0]
        frame = data[pos + 16 : pos + 16 + caplen]
        pos += 16 + caplen
        if len(frame) >= 14 + 20 + 14 and frame[23] == 6:
            ihl = (frame[14] & 0x0F) * 4
            count += bool(frame[14 + ihl + 13] & 0x05)
    return count


def wait_for_teardown(capture: Path) -> None:
    """Poll (with a deadline) until tcpdump has written the connection's end (a FIN or
    RST): then every packet before it, the SIP ones included, is in the file."""
    deadline = time.monotonic() + LIMIT
    while not teardowns(capture):
        if time.monotonic() > deadline:
            pytest.fail(f"tcpdump wrote no end of the connection to {capture}")
        time.sleep(0.01)


@pytest.mark.interop
@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2])
def test_tshark_decrypts_a_tcpdump_capture_with_the_key_log(
    tmp_path: Path, pki: dict[str, Path], tool: Callable[[str], str], version: ssl.TLSVersion
) -> None:
    tcpdump, tshark = tool("tcpdump"), tool("tshark")
    keylog, capture = tmp_path / "keys.log", tmp_path / "lab.pcap"
    with socket.socket() as probe:  # a free port, known before tcpdump's filter names it
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    proc = subprocess.Popen(
        # --immediate-mode -U: each packet is written as it arrives, not a buffer at a time.
        [
            tcpdump,
            "-i",
            "lo",
            "--immediate-mode",
            "-U",
            "-n",
            "-w",
            str(capture),
            f"tcp port {port}",
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        wait_for_line(proc, b"listening on")
        server, client = contexts(pki, version=version, keylog=keylog)
        trio.run(partial(exchange, server, client, port=port))
        wait_for_teardown(capture)
    finally:
        proc.send_signal(signal.SIGINT)  # tcpdump writes out what it has and exits
        try:
            proc.wait(timeout=LIMIT)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            assert proc.stderr is not None
            proc.stderr.close()
    done = subprocess.run(
        [
            tshark, "-r", str(capture), "-o", f"tls.keylog_file:{keylog}",
            # On 5061/5062 (sip-tls) tshark hands the decrypted bytes to SIP by itself; the
            # test's free port needs telling. TLS itself is found by its heuristic.
            "-d", f"tls.port=={port},sip",
            "-Y", "sip", "-T", "fields", "-e", "sip.Method", "-e", "sip.Status-Code",
            "-e", "sip.Call-ID",
        ],
        capture_output=True, text=True, timeout=LIMIT, check=False, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "OPTIONS\t\tkeylog-call@127.0.0.1",
        "\t200\t",
    ]
