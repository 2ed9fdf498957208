"""``dig`` against the lab DNS server of a running ``fedsim serve`` (UDP and TCP).

All tests share one serve (``shared_lab``): DNS queries change nothing.
The lab server is authoritative for its zones and does no recursion: answers
carry ``aa`` and never ``ra``, and a missing name is NXDOMAIN with the zone's SOA.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:  # fixtures hand these out; importlib mode cannot import conftest
    from collections.abc import Callable

    from conftest import Lab, Procs

pytestmark = pytest.mark.interop

TRANSPORTS = [pytest.param((), id="udp"), pytest.param(("+tcp",), id="tcp")]


def dig(
    shared_lab: Lab, procs: Procs, tool: Callable[[str], str], *args: str
) -> tuple[str, set[str], list[str], list[str]]:
    """Run dig; return (status, header flags, answer lines, authority lines)."""
    code, out = procs.run(
        [tool("dig"), "@127.0.0.1", "-p", str(shared_lab.dns_port), "+time=3", "+tries=1", *args],
        timeout=15,
    )
    assert code == 0, out
    header = re.search(r"status: (\w+),", out)
    flags = re.search(r";; flags: ([a-z ]+);", out)
    assert header is not None, out
    assert flags is not None, out
    sections: dict[str, list[str]] = {}
    current = ""
    for line in out.splitlines():
        title = re.match(r";; (\w+) SECTION:", line)
        if title:
            current = title.group(1)
            continue
        if line and not line.startswith(";"):
            sections.setdefault(current, []).append(" ".join(line.split()))
    return (
        header.group(1),
        set(flags.group(1).split()),
        sections.get("ANSWER", []),
        sections.get("AUTHORITY", []),
    )


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_acano_srv_is_authoritative_and_points_at_the_parent_domain_host(
    shared_lab: Lab, procs: Procs, tool: Callable[[str], str], transport: tuple[str, ...]
) -> None:
    # dig asks with RD set (its default): the lab server still must not offer recursion.
    status, flags, answer, _ = dig(
        shared_lab, procs, tool, "_sipfederationtls._tcp.acano.steven.lab", "SRV", *transport
    )
    assert status == "NOERROR"
    assert "aa" in flags
    assert "ra" not in flags
    assert answer == [
        "_sipfederationtls._tcp.acano.steven.lab. 300 IN SRV 0 0 5061 vcse.steven.lab."
    ]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_srv_short_form_gives_the_target(
    shared_lab: Lab, procs: Procs, tool: Callable[[str], str], transport: tuple[str, ...]
) -> None:
    code, out = procs.run(
        [
            tool("dig"),
            "@127.0.0.1",
            "-p",
            str(shared_lab.dns_port),
            "_sipfederationtls._tcp.steven.lab",
            "SRV",
            "+short",
            *transport,
        ],
        timeout=15,
    )
    assert code == 0, out
    assert out.strip() == "0 0 5061 vcse.steven.lab."


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_missing_name_is_nxdomain_with_the_zone_soa(
    shared_lab: Lab, procs: Procs, tool: Callable[[str], str], transport: tuple[str, ...]
) -> None:
    status, flags, answer, authority = dig(
        shared_lab, procs, tool, "nosrv.steven.lab", "SRV", "+norec", *transport
    )
    assert status == "NXDOMAIN"
    assert "aa" in flags
    assert "ra" not in flags
    assert answer == []
    assert authority == [
        "steven.lab. 300 IN SOA ns.steven.lab. hostmaster.steven.lab. 2017030201 3600 600 86400 300"
    ]
