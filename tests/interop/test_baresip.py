"""baresip 1.0.0 as a TLS user agent calling the Edge through an outbound proxy.

The config is shared/interop/baresip/config with this run's paths: the client
certificate is the seed's peer certificate (vcse.steven.lab) with its key in one
PEM, as baresip's ``sip_certificate`` wants; ``dns_server`` is the lab DNS. The
account's outbound proxy is the Edge's federation port, so no SRV is needed to
reach it. baresip presents that certificate over TLS (the Edge's event shows the
name), so the full mutual-TLS call works. ausine only runs at 48 kHz stereo,
hence ``ausrc_srate``/``ausrc_channels``: without them the audio source fails and
baresip drops the call before it can ACK.

The Skype user behind the Edge decides the media: with ``mediaenc srtp-mand``
baresip offers RTP/SAVP with an SDES key and gets an SRTP answer. Without it,
baresip offers plain RTP, and a user whose policy requires encryption refuses
with a 488. baresip 1.0.0 cannot read the Lync 2010 form of that refusal: its
SIP stack (libre) files header names under a 12-bit hash, and
``ms-client-diagnostics`` hashes to the value of ``To``, so it parses the 52017
value as a To header, logs a decode error and drops the response
(docs/reference/skype-user.md 2.24). So the 488 test runs the seed lab with
``media_refusal = "legacy"``, the older form Microsoft documents
(``488 Encryption Levels not compatible`` + ``Warning: 308 lcs.microsoft.com``),
which baresip reads; the 52017 form is shown to baresip's stack in a test of
its own, and to SIPp and ``fedsim call`` elsewhere (tests/interop/test_sipp.py,
scenarios/skype).
"""

from __future__ import annotations

import re
import signal
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:  # fixtures hand these out; importlib mode cannot import conftest
    from collections.abc import Callable

    from conftest import Child, Lab, Procs

pytestmark = pytest.mark.interop

#: Seconds after which baresip quits by itself (-t), should a test not stop it first.
QUIT_AFTER = 15


def baresip(
    lab: Lab,
    procs: Procs,
    tool: Callable[[str], str],
    shared_dir: Path,
    tmp_path: Path,
    domain: str,
    *,
    to: str = "stejanss",
    mediaenc: str | None = None,
    quit_after: int = QUIT_AFTER,
) -> Child:
    """Start baresip as sip:2000@``domain`` dialling sip:``to``@skype.lab via the Edge
    (``mediaenc``: baresip's media encryption, e.g. ``srtp-mand``; None: plain RTP)."""
    home = tmp_path / f"baresip-{domain}-{to}-{mediaenc}"
    home.mkdir()
    pem = home / "client.pem"
    pem.write_bytes(
        lab.cert("vcse.steven.lab").read_bytes() + lab.key("vcse.steven.lab").read_bytes()
    )
    config = (shared_dir / "interop" / "baresip" / "config").read_text(encoding="utf-8")
    replaced = {
        "sip_certificate": str(pem),
        "sip_cafile": str(lab.ca),
        "dns_server": f"127.0.0.1:{lab.dns_port}",
    }
    lines = []
    for line in config.splitlines():
        name = line.split(maxsplit=1)[0] if line.strip() else ""
        if name in replaced:
            line = f"{name}\t\t{replaced.pop(name)}"
        lines.append(line)
    assert not replaced, f"interop/baresip/config lacks {sorted(replaced)}"
    lines += ["ausrc_srate\t\t48000", "ausrc_channels\t\t2"]
    if mediaenc is not None:
        lines.append("module\t\t\tsrtp.so")
    (home / "config").write_text("\n".join(lines) + "\n", encoding="utf-8")
    media = f";mediaenc={mediaenc}" if mediaenc is not None else ""
    (home / "accounts").write_text(
        f"<sip:2000@{domain};transport=tls>;regint=0{media};"
        f'outbound="sip:127.0.0.1:{lab.fed_port};transport=tls"\n',
        encoding="utf-8",
    )
    (home / "contacts").write_text("", encoding="utf-8")
    child = procs.start(
        [
            tool("baresip"),
            "-f",
            home,
            "-s",
            "-e",
            f"/dial sip:{to}@skype.lab",
            "-t",
            str(quit_after),
        ]
    )
    child.out.what = "baresip"
    child.stop_signal = signal.SIGKILL  # SIGTERM waits for the BYE's transaction
    return child


def invites(lab: Lab) -> list[dict[str, object]]:
    return [e for e in lab.events() if e.get("method") == "INVITE"]


def test_call_from_steven_lab_is_established_and_logged_accepted(
    lab: Lab, procs: Procs, tool: Callable[[str], str], shared_dir: Path, tmp_path: Path
) -> None:
    child = baresip(lab, procs, tool, shared_dir, tmp_path, "steven.lab")
    child.out.wait_for(r"Call established: sip:stejanss@skype\.lab")
    trace = child.out.text
    assert re.search(rf"TLS 127\.0\.0\.1:\d+ -> 127\.0\.0\.1:{lab.fed_port}\r?\nINVITE ", trace)
    assert "SIP/2.0 180 Ringing" in trace
    assert "SIP/2.0 200 OK" in trace
    [event] = invites(lab)
    assert (event["accepted"], event["status"], event["from"]) == (True, 200, "sip:2000@steven.lab")
    extra = event["extra"]
    assert isinstance(extra, dict)
    # The Edge saw baresip's client certificate: mutual TLS, not a server-only session.
    assert extra["cert_names"] == ["vcse.steven.lab"]
    assert extra["chain"] == "trusted"


def test_call_from_acano_gets_504_and_baresip_acks_it(
    lab: Lab, procs: Procs, tool: Callable[[str], str], shared_dir: Path, tmp_path: Path
) -> None:
    child = baresip(lab, procs, tool, shared_dir, tmp_path, "acano.steven.lab")
    child.out.wait_for(r"session closed: 504 Server time-out")
    trace = child.out.text
    assert re.search(rf"-> 127\.0\.0\.1:{lab.fed_port}\r?\nACK sip:stejanss@skype\.lab", trace)
    response = trace[trace.index("SIP/2.0 504") :].split("\r\n\r\n", 1)[0]
    assert "ms-diagnostics" not in response.lower()  # bare 504 towards a federated peer
    [event] = invites(lab)
    assert (event["accepted"], event["status"], event["rule"]) == (False, 504, "srv-not-in-domain")
    assert "SIPPROXY_E_EPROUTING_MSG_ALLOWED_DOMAIN_NO_SRV_MATCH" in lab.edge_log()


def test_ack_to_the_200_reaches_the_edge(
    lab: Lab, procs: Procs, tool: Callable[[str], str], shared_dir: Path, tmp_path: Path
) -> None:
    child = baresip(lab, procs, tool, shared_dir, tmp_path, "steven.lab")
    child.out.wait_for(r"Call established")
    # The ACK leaves just after "Call established" (it waits for the DNS of the Contact).
    child.out.wait_for(rf"-> 127\.0\.0\.1:{lab.fed_port}\r?\nACK ", timeout=3)


def _response(trace: str, status_line: str) -> str:
    """The first response of baresip's trace that starts with ``status_line``."""
    return trace[trace.index(status_line) :].split("\r\n\r\n", 1)[0]


def test_srtp_mand_gets_a_200_with_an_srtp_answer(
    lab: Lab, procs: Procs, tool: Callable[[str], str], shared_dir: Path, tmp_path: Path
) -> None:
    # carol keeps Microsoft's default policy (the seed lab): she requires encryption.
    child = baresip(
        lab, procs, tool, shared_dir, tmp_path, "steven.lab", to="carol", mediaenc="srtp-mand"
    )
    child.out.wait_for(r"Call established: sip:carol@skype\.lab")
    trace = child.out.text
    assert re.search(r"m=audio \d+ RTP/SAVP ", trace)  # baresip's offer
    ok = _response(trace, "SIP/2.0 200 OK")
    assert "User-Agent: UCCAPI/16.0.4417.1000 OC/16.0.4417.1000 (Skype for Business)" in ok
    [event] = invites(lab)
    assert (event["status"], event["user"]) == (
        200,
        {"media": "RTP/SAVP PCMU PCMA telephone-event", "secure": True, "offer": False},
    )


def test_plain_rtp_gets_the_legacy_488_from_a_user_who_requires_srtp(
    seed_variant: Callable[[str], Lab],
    procs: Procs,
    tool: Callable[[str], str],
    shared_dir: Path,
    tmp_path: Path,
) -> None:
    lab = seed_variant('media_refusal = "legacy"')
    child = baresip(lab, procs, tool, shared_dir, tmp_path, "steven.lab", to="carol")
    child.out.wait_for(r"session closed: 488 Encryption Levels not compatible")
    refusal = _response(child.out.text, "SIP/2.0 488 ")
    assert 'Warning: 308 lcs.microsoft.com "Encryption Levels not compatible"' in refusal
    [event] = invites(lab)
    assert (event["status"], event["user"]["refusal"]) == (488, "encryption")  # type: ignore[index]


def test_baresip_cannot_read_the_52017_form_of_the_488(
    lab: Lab, procs: Procs, tool: Callable[[str], str], shared_dir: Path, tmp_path: Path
) -> None:
    """libre reads ``ms-client-diagnostics`` as To (its header hash): the 488 is dropped.

    This pins baresip 1.0.0's bug, the reason the legacy form exists: should a
    future baresip read it, this test fails and the workaround can go.
    """
    child = baresip(lab, procs, tool, shared_dir, tmp_path, "steven.lab", to="carol", quit_after=4)
    child.out.wait_for(r"SIP Progress: 100 Trying")
    # The Edge sent the 488 right after the 100 (its event is written before the send)...
    [event] = invites(lab)
    assert (event["status"], event["user"]["refusal"]) == (488, "encryption")  # type: ignore[index]
    # ...and baresip, quitting by itself (-t), still believes the call is ringing: it
    # CANCELs an INVITE that had its final answer seconds ago (RFC 3261 §9.1 forbids
    # that once a final response arrived), and its trace shows no 488 at all.
    child.out.wait_for(r"\nCANCEL sip:carol@skype\.lab")
    # (Only the status line counts: a random tag or branch may contain "488".)
    assert "SIP/2.0 488" not in child.out.text
    assert "session closed: 488" not in child.out.text
    assert "Encryption levels dont match" not in child.out.text
