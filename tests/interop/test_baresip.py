"""baresip 1.0.0 as a TLS user agent calling the Edge through an outbound proxy.

The config is shared/interop/baresip/config with this run's paths: the client
certificate is the seed's peer certificate (vcse.steven.lab) with its key in one
PEM, as baresip's ``sip_certificate`` wants; ``dns_server`` is the lab DNS. The
account's outbound proxy is the Edge's federation port, so no SRV is needed to
reach it. baresip presents that certificate over TLS (the Edge's event shows the
name), so the full mutual-TLS call works. ausine only runs at 48 kHz stereo,
hence ``ausrc_srate``/``ausrc_channels``: without them the audio source fails and
baresip drops the call before it can ACK.
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
) -> Child:
    """Start baresip as sip:2000@``domain`` dialling sip:stejanss@skype.lab via the Edge."""
    home = tmp_path / f"baresip-{domain}"
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
    (home / "config").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (home / "accounts").write_text(
        f"<sip:2000@{domain};transport=tls>;regint=0;"
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
            "/dial sip:stejanss@skype.lab",
            "-t",
            str(QUIT_AFTER),
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
