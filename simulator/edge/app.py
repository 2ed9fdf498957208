"""Wire a lab into running servers: lab PKI, lab DNS, the Edge's two listeners.

:func:`serve_lab` is what ``fedsim serve`` (and the scenario runner) runs: it
binds the CRL server (the certificates name its URL), issues the lab's
certificates and their CAs' CRLs, loads its zones, starts the DNS server, the
CRL server, the Edge's federation listener, its clients listener and the
outbound connector in one nursery and reports every bound address through
``task_status``.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import trio
from cryptography import x509

from simulator.dns import Record, Resolver, ZoneSet, load_zone_file, parse_zone_text, serve_dns
from simulator.dns.server import IDLE_TIMEOUT as DNS_IDLE_TIMEOUT
from simulator.edge.clients import clients_context, serve_clients
from simulator.edge.crl import CrlFetcher, CrlService, open_crl_service, serve_crls
from simulator.edge.inbound import serve_federation
from simulator.edge.observers import Observer, Watch
from simulator.edge.outbound import Outbound, OutboundLimits
from simulator.edge.partners import outbound_context
from simulator.edge.recorder import Recorder
from simulator.edge.state import EdgeState, Limits, TrustStore
from simulator.edge.taps import FLUSH_SECONDS, TRACE_LOG
from simulator.errors import LabError
from simulator.lab import Lab
from simulator.lab.files import TlsFiles, tls_files
from simulator.lab.settings import edge_settings as lab_edge_settings
from simulator.lab.settings import user_directory
from simulator.pki import (
    IssuedCert,
    issue_pki,
    load_pem_certificates,
    server_context,
)
from simulator.pki.lab import file_stem
from simulator.policy import EdgeSettings
from simulator.skype.user import SkypeUser


@dataclass(frozen=True, slots=True, kw_only=True)
class LabAddresses:
    """Where a running lab listens, and the files a peer needs to talk to it."""

    dns: tuple[str, int]
    federation: tuple[str, int]
    clients: tuple[str, int]
    edge_cert: Path
    edge_ca: Path | None
    log_dir: Path
    certs_dir: Path
    issued: dict[str, IssuedCert]
    crl: str = ""
    #: The SIPStack trace and the capture being written, if any.
    trace: Path | None = None
    pcap: Path | None = None


def edge_settings(lab: Lab) -> EdgeSettings:
    """The policy's view of the lab's ``[edge]`` (built by :mod:`simulator.lab.settings`)."""
    return lab_edge_settings(lab)


def lab_zones(lab: Lab) -> ZoneSet:
    """Load the lab's zone files and inline records (errors name file and line)."""
    records: list[Record] = []
    for path in lab.dns.zones:
        records.extend(load_zone_file(path))
    if lab.dns.records.strip():
        source = str(lab.path) if lab.path is not None else "<built-in lab>"
        records.extend(
            parse_zone_text(lab.dns.records, source=source, first_line=lab.dns.records_line)
        )
    return ZoneSet.from_records(records, silent=lab.dns.silent, servfail=lab.dns.servfail)


def _load_all(paths: Sequence[Path]) -> list[x509.Certificate]:
    certs: list[x509.Certificate] = []
    for path in paths:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise LabError(
                f"cannot read {path}: {exc.strerror}", path=str(path), fix="check the path"
            ) from None
        certs.extend(load_pem_certificates(data, source=str(path)))
    return certs


def crl_store(issued: dict[str, IssuedCert]) -> dict[str, bytes]:
    """The CRL server's content: ``/<ca stem>.crl`` -> the CA's DER CRL."""
    store: dict[str, bytes] = {}
    for name, cert in issued.items():
        if cert.crl_path is not None:
            try:
                store[f"/{file_stem(name)}.crl"] = cert.crl_path.read_bytes()
            except OSError as exc:
                raise LabError(
                    f"cannot read the CRL of {name}: {exc.strerror}",
                    path=str(cert.crl_path),
                    fix="check the certificates directory",
                ) from None
    return store


def trust_store(lab: Lab, material: TlsFiles, issued: dict[str, IssuedCert]) -> TrustStore:
    """The Edge's trust anchors, which of them are 'public', and every lab CA for paths."""
    roots = _load_all(material.trust)
    public_files = [i.cert_path for i in issued.values() if i.is_ca and i.public]
    ca_files = [i.cert_path for i in issued.values() if i.is_ca]
    public = _load_all(public_files)
    return TrustStore(roots=roots, public_roots=public, intermediates=_load_all(ca_files))


async def serve_lab(
    lab: Lab,
    *,
    log_dir: Path,
    certs_dir: Path,
    console: Callable[[str], None] | None = None,
    quiet: bool = False,
    debug: bool = False,
    limits: Limits | None = None,
    outbound: OutboundLimits | None = None,
    rng: random.Random | None = None,
    crl: CrlService | None = None,
    trace: bool = False,
    pcap: Path | None = None,
    observe: Observer | None = None,
    watch: Watch | None = None,
    task_status: trio.TaskStatus[LabAddresses] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run the lab's DNS server and Edge until cancelled; report a :class:`LabAddresses`.

    ``observe`` sees every event and Edge record as it is written, ``watch`` every SIP
    message the Edge reads or writes (both: the live page; they must only queue).

    ``outbound`` sets the outbound connector's timeouts (and the port of
    ``proxy_fqdn`` partners); ``limits`` those of the listeners. ``debug`` shows
    the traceback of an internal error on the console (it is always recorded).
    ``crl`` is a CRL service already bound (the runner binds it before issuing the
    peers' certificates); without it the lab's ``[pki] crl_listen`` is bound here.
    ``trace`` writes ``trace.log`` in ``log_dir`` and ``pcap`` a capture of every SIP
    message (:mod:`simulator.edge.taps`); both are flushed and closed when it stops.
    """
    if crl is None:
        crl = await open_crl_service(*lab.pki.crl_listen)
    try:
        await _serve_lab(
            lab,
            crl,
            log_dir=log_dir,
            certs_dir=certs_dir,
            console=console,
            quiet=quiet,
            debug=debug,
            limits=limits,
            outbound=outbound,
            rng=rng,
            trace=trace,
            pcap=pcap,
            observe=observe,
            watch=watch,
            task_status=task_status,
        )
    finally:
        for listener in crl.listeners:
            with trio.CancelScope(shield=True):
                await trio.aclose_forcefully(listener)


async def _serve_lab(
    lab: Lab,
    crl: CrlService,
    *,
    log_dir: Path,
    certs_dir: Path,
    console: Callable[[str], None] | None,
    quiet: bool,
    debug: bool,
    limits: Limits | None,
    outbound: OutboundLimits | None,
    rng: random.Random | None,
    trace: bool,
    pcap: Path | None,
    observe: Observer | None,
    watch: Watch | None,
    task_status: trio.TaskStatus[LabAddresses],
) -> None:
    issued = issue_pki(lab.certs, certs_dir, now=dt.datetime.now(dt.UTC), crl_url=crl.base)
    crl.store.update(crl_store(issued))
    zones = lab_zones(lab)
    material = tls_files(lab.edge.cert, lab.edge.trust, issued)
    # Office 365 (hosted) accepts only publicly trusted CAs (reference §5.4, [CISCO]):
    # the TLS layer trusts only the public ones among the Edge's trust list.
    trust_files = material.trust
    if lab.edge.hosted:
        public = {i.cert_path for i in issued.values() if i.is_ca and i.public}
        trust_files = tuple(p for p in trust_files if p in public)
    settings = edge_settings(lab)
    context = server_context(
        cert=material.cert,
        key=material.key,
        chain=material.chain,
        trust=trust_files,
        require_client_cert=True,
        profile=lab.edge.tls,
        # [edge.rules] client_eku: "require" refuses a peer without clientAuth at the
        # handshake (OpenSSL's purpose check); "ignore" verifies the chain for any use.
        check_client_purpose=settings.rules.client_eku == "require",
    )
    # Clients authenticate the Edge only (their own identity is the FE's business).
    clients_ctx = clients_context(
        server_context(
            cert=material.cert,
            key=material.key,
            chain=material.chain,
            require_client_cert=False,
            profile=lab.edge.tls,
        )
    )
    out_ctx = outbound_context(
        cert=material.cert, key=material.key, chain=material.chain, profile=lab.edge.tls
    )
    # A seeded lab (rng given) writes the same records on every run: its pid.tid too.
    pid_tid = None if rng is None else (rng.getrandbits(16), rng.getrandbits(16))
    rng = rng or random.Random()
    recorder = Recorder(log_dir, console=console, machine=lab.edge.machine, pid_tid=pid_tid)
    recorder.decisions = not quiet
    recorder.debug = debug
    if observe is not None:
        recorder.subscribe(observe)
    try:
        recorder.start_taps(trace=trace, pcap=pcap, seed=lab.edge.seed, watch=watch)
        async with trio.open_nursery() as nursery:
            if recorder.taps is not None:  # a quiet lab's last messages reach the files too
                nursery.start_soon(recorder.taps.flush_every, FLUSH_SECONDS)
            limits = limits or Limits()
            # The lab's idle timeout bounds its DNS server's TCP connections too.
            dns_idle = min(DNS_IDLE_TIMEOUT, limits.idle_timeout)
            dns_addr = await nursery.start(
                partial(serve_dns, report=recorder.internal_error, idle_timeout=dns_idle),
                zones,
                *lab.dns.listen,
            )
            await nursery.start(partial(serve_crls, crl, report=recorder.internal_error))
            resolver_target = lab.edge.dns if lab.edge.dns is not None else dns_addr
            resolver = Resolver(
                resolver_target,
                timeout=limits.dns_timeout,
                attempts=limits.dns_attempts,
                rng=rng,
            )
            edge = EdgeState(
                settings=settings,
                users=lab.edge.answers,
                resolver=resolver,
                trust=trust_store(lab, material, issued),
                recorder=recorder,
                limits=limits,
                rng=rng,
                crls=CrlFetcher(resolver),
                lab_users=lab.edge.users,
            )
            # One emulated Skype user answers for both directions.
            user = SkypeUser(user_directory(lab), rng=rng, ring_seconds=limits.ring_seconds)
            fed_addr = await nursery.start(serve_federation, edge, user, context, *lab.edge.listen)
            connector = Outbound(edge, out_ctx, limits=outbound)
            await nursery.start(connector.run)
            clients_addr = await nursery.start(
                partial(serve_clients, connector=connector),
                edge,
                user,
                clients_ctx,
                *lab.edge.clients,
            )
            edge_ca = None
            if isinstance(lab.edge.cert, str):
                edge_ca = issued[lab.edge.cert].root_path
            task_status.started(
                LabAddresses(
                    dns=dns_addr,
                    federation=fed_addr,
                    clients=clients_addr,
                    edge_cert=material.cert,
                    edge_ca=edge_ca,
                    log_dir=log_dir,
                    certs_dir=certs_dir,
                    issued=issued,
                    crl=crl.base,
                    trace=log_dir / TRACE_LOG if trace else None,
                    pcap=pcap,
                )
            )
    finally:
        recorder.close()
