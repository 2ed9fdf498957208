"""The lab `fedsim check` is tested against: an in-process lab DNS and a lab PKI.

The zone stages the Cisco note's cases side by side, one partner domain each;
the PKI is issued at the real current time because `fedsim check` checks
validity at the real current time.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable

import pytest
import trio

from simulator.cli import main
from simulator.dns import ZoneSet, parse_zone_text, serve_dns
from simulator.pki import CertSpec, IssuedCert, issue_pki

#: The lab's partner domains, each staging one case.
RECORDS = """\
steven.lab.  300 IN SOA ns.steven.lab. hostmaster.steven.lab. 1 3600 600 86400 30
; the Cisco note's broken CMS domain: its SRV points into the parent domain
_sipfederationtls._tcp.acano.steven.lab. 300 IN SRV 0 0 5061 vcse.steven.lab.
vcse.steven.lab.                         300 IN A   192.0.2.10
; a correct partner: SRV target one label under the domain, with an address
_sipfederationtls._tcp.cms.steven.lab.   300 IN SRV 0 0 5061 vcse.cms.steven.lab.
vcse.cms.steven.lab.                     300 IN A   192.0.2.20
vcse.cms.steven.lab.                     300 IN AAAA 2001:db8::20
; matched by a CN-only certificate
_sipfederationtls._tcp.cnonly.steven.lab. 300 IN SRV 0 0 5061 vcse.cnonly.steven.lab.
vcse.cnonly.steven.lab.                  300 IN A   192.0.2.30
; SRV target without an address
_sipfederationtls._tcp.noa.steven.lab.   300 IN SRV 0 0 5061 vcse.noa.steven.lab.
; a domain without any SRV record
www.nosrv.steven.lab.                    300 IN A   192.0.2.40
; two in-domain targets, only the second has an address
_sipfederationtls._tcp.two.steven.lab.   300 IN SRV 10 0 5061 a.two.steven.lab.
_sipfederationtls._tcp.two.steven.lab.   300 IN SRV 20 0 5061 b.two.steven.lab.
b.two.steven.lab.                        300 IN A   192.0.2.50
"""
ZONES = ZoneSet.from_records(
    parse_zone_text(RECORDS, source="<check lab>"),
    silent=["silent.steven.lab."],
    servfail=["broken.steven.lab."],
)

SPECS: tuple[CertSpec, ...] = (
    CertSpec(name="public-root", ca=True, public=True, cn="Lab Public Root"),
    CertSpec(name="public-inter", ca=True, issuer="public-root", cn="Lab Public Issuing CA"),
    CertSpec(name="private-root", ca=True, cn="Steven Lab Private Root"),
    CertSpec(name="vcse.steven.lab", issuer="public-root", cn="vcse.steven.lab"),
    CertSpec(name="vcse.cms.steven.lab", issuer="public-root", cn="vcse.cms.steven.lab"),
    CertSpec(name="cn-only", issuer="public-root", cn="vcse.cnonly.steven.lab", san=()),
    CertSpec(name="cn-not-san", issuer="public-root", cn="vcse.cms.steven.lab",
             san=("vcse.steven.lab",)),
    CertSpec(name="vcse.noa.steven.lab", issuer="public-root", cn="vcse.noa.steven.lab"),
    CertSpec(name="both-two", issuer="public-root", cn="a.two.steven.lab",
             san=("a.two.steven.lab", "b.two.steven.lab")),
    CertSpec(name="only-a-two", issuer="public-root", cn="a.two.steven.lab"),
    CertSpec(name="private", issuer="private-root", cn="vcse.cms.steven.lab"),
    CertSpec(name="expired", issuer="public-root", cn="vcse.cms.steven.lab", validity="expired"),
    CertSpec(name="via-inter", issuer="public-inter", cn="vcse.cms.steven.lab"),
    CertSpec(name="server-only", issuer="public-root", cn="vcse.cms.steven.lab",
             eku=("serverAuth",)),
    CertSpec(name="wildcard", issuer="public-root", cn="*.cms.steven.lab"),
)  # fmt: skip

Check = Callable[..., Awaitable[tuple[int, str, str]]]


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, IssuedCert]:
    """The lab certificates by name, issued now."""
    return issue_pki(SPECS, tmp_path_factory.mktemp("check-pki"), now=dt.datetime.now(dt.UTC))


@pytest.fixture
def pem(pki: dict[str, IssuedCert]) -> Callable[[str], str]:
    """Path of a lab certificate's PEM, by lab name."""
    return lambda name: str(pki[name].cert_path)


@pytest.fixture
async def dns(nursery: trio.Nursery) -> str:
    """The lab DNS on loopback, as ``host:port`` for --dns."""
    host, port = await nursery.start(serve_dns, ZONES, "127.0.0.1", 0)
    return f"{host}:{port}"


@pytest.fixture
def check(capsys: pytest.CaptureFixture[str], dns: str, pki: dict[str, IssuedCert]) -> Check:
    """Run ``fedsim check`` against the lab DNS (a worker thread, so the DNS keeps serving).

    ``--public-trust public-root`` is the default trust (the machine's CA store is
    not the lab's) unless the call passes ``public=None`` or its own list.
    """

    async def run(
        domain: str, cert: str, *extra: str, public: str | None = "public-root"
    ) -> tuple[int, str, str]:
        argv = ["check", "--domain", domain, "--cert", str(pki[cert].cert_path) if cert in pki
                else cert, "--dns", dns, "--timeout", "0.2", *extra]  # fmt: skip
        if public is not None:
            argv += ["--public-trust", str(pki[public].cert_path)]
        code = await trio.to_thread.run_sync(main, argv)
        out, err = capsys.readouterr()
        return code, out, err

    return run
