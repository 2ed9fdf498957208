"""Smoke test of ``make bench``: the whole bench runs end to end with tiny counts.

It checks the shape of the table and of results.json, that every fedsim figure
was measured, and that fedsim wrote one event per INVITE. It never checks a
timing: the figures of a shared CI machine mean nothing.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from simulator.bench.servers import (
    BenchPki,
    bench_lab_text,
    kamailio_config,
    kamailio_proxy_config,
    tls_proxy_profile,
)

pytestmark = pytest.mark.interop

REQUIRED = (
    "warm_cpu_us_per_call",
    "warm_max_cps",
    "handshake_cpu_ms_per_call",
    "outbound_cpu_us_per_call",
    "p99_ms_at_1000cps",
    "rss_kib_per_idle_conn",
    "catalogue_wall_s",
    "serve_ready_s",
)
#: --quick does not time the catalogue (it would dominate the smoke test).
NULL_IN_QUICK = {"catalogue_wall_s"}
#: Whether a 0.5 s step achieves 95 % of its offered rate is a timing: null ("even
#: the first step fell short") is a valid answer on a busy machine, so the smoke test
#: checks that the first step ran for every server, not what it achieved.
TIMED_IN_QUICK = {"warm_max_cps"}


def require_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(
            f"{name} is not on PATH: make test (.ci/ensure-packages) installs the real peers"
        )
    return path


def test_quick_bench_writes_the_table_and_json_for_all_three_servers(tmp_path: Path) -> None:
    for tool in ("sipp", "stunnel", "kamailio"):
        require_tool(tool)
    out = tmp_path / "results.json"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "simulator.bench",
            "--quick",
            "--no-install",
            "--out",
            str(out),
            "--keep",
            str(tmp_path / "work"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads(out.read_text(encoding="utf-8"))
    rows = {row["name"]: row for row in results["figures"]}
    assert set(REQUIRED) <= set(rows)
    for name, row in rows.items():
        assert set(row) == {"name", "unit", "fedsim", "kamailio", "ceiling"}, name
        if name not in NULL_IN_QUICK | TIMED_IN_QUICK:
            assert row["fedsim"] is not None, name
    for server in ("fedsim", "kamailio", "ceiling"):
        assert f"bench: {server}: step 200 cps: " in done.stderr, server
    for name in ("warm_cpu_us_per_call", "handshake_cpu_ms_per_call", "p99_ms_at_1000cps"):
        assert rows[name]["kamailio"] is not None, name
        assert rows[name]["ceiling"] is not None, name
    assert rows["warm_failed_calls"]["fedsim"] == 0
    # Outbound: fedsim and the Kamailio proxy relayed every call to the same partner.
    for server in ("fedsim", "kamailio"):
        assert rows["outbound_cpu_us_per_call"][server] is not None, server
        assert rows["outbound_failed_calls"][server] == 0, server
    assert rows["outbound_cpu_us_per_call"]["ceiling"] is None  # it relays nothing
    assert rows["events_missing"]["fedsim"] == 0  # one event per INVITE, none lost
    header, rule, *lines = done.stdout.splitlines()[:-1]
    assert header.split()[:5] == ["figure", "unit", "fedsim", "Kamailio", "trio"]
    assert set(rule) <= {"-", " "}
    assert [line.split()[0] for line in lines] == list(rows)


def _pki(tmp_path: Path) -> BenchPki:
    return BenchPki(
        certs_dir=tmp_path,
        server_cert=tmp_path / "s.crt",
        server_key=tmp_path / "s.key",
        ca=tmp_path / "ca.crt",
        client_cert=tmp_path / "c.crt",
        client_key=tmp_path / "c.key",
        partner_cert=tmp_path / "p.crt",
        partner_key=tmp_path / "p.key",
    )


def test_kamailio_config_takes_this_runs_port_modules_and_certificates(tmp_path: Path) -> None:
    text = kamailio_config(_pki(tmp_path), 40123, Path("/opt/kamailio/modules"))
    assert "listen=tls:127.0.0.1:40123\n" in text
    assert 'mpath="/opt/kamailio/modules/"' in text
    assert f'modparam("tls", "certificate", "{tmp_path / "s.crt"}")' in text
    assert f'modparam("tls", "private_key", "{tmp_path / "s.key"}")' in text
    assert f'modparam("tls", "ca_list", "{tmp_path / "ca.crt"}")' in text
    settings = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    assert not [line for line in settings if "/tmp/edge-peers" in line]
    assert "tcp_children=1" in text  # one TLS worker: kamailio/kamailio#3791


def test_kamailio_proxy_config_relays_to_this_runs_partner(tmp_path: Path) -> None:
    tls_cfg = tmp_path / "tls.cfg"
    text = kamailio_proxy_config(Path("/opt/kamailio/modules"), 40124, tls_cfg, 40999)
    assert "listen=tls:127.0.0.1:40124\n" in text
    assert 'mpath="/opt/kamailio/modules/"' in text
    assert f'modparam("tls", "config", "{tls_cfg}")' in text
    assert '$du = "sip:127.0.0.1:40999;transport=tls";' in text
    assert 'loadmodule "tm.so"' in text  # stateful: it ACKs the partner's 504 itself
    settings = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    assert not [line for line in settings if "/tmp/edge-peers" in line]
    profile = tls_proxy_profile(_pki(tmp_path))
    # Mutual TLS on both legs, with the Edge's certificate.
    for side in ("[server:default]", "[client:default]"):
        section = profile.split(side, 1)[1].split("[", 1)[0]
        assert "require_certificate = yes" in section
        assert f"certificate = {tmp_path / 's.crt'}" in section
        assert f"ca_list = {tmp_path / 'ca.crt'}" in section


def test_bench_lab_points_the_far_bench_srv_at_the_partner_port() -> None:
    text = bench_lab_text(40999)
    srv = [line for line in text.splitlines() if "SRV" in line and "far.bench" in line]
    assert len(srv) == 1
    assert srv[0].split()[-2:] == ["40999", "vcse.far.bench."]
    assert "5061 vcse.far.bench." not in text
