"""``fedsim check`` equals ``fedsim serve``: every call of every scenario, predicted and run.

The catalogue runs once through ``fedsim run --json`` (the running Edge); each
lab is then predicted by :func:`simulator.check.lab.predict_call` from the
same lab file. Status, rule and ms-diagnostics id must agree for every call:
if the Edge and the prediction ever drift apart, this test names the call.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import pytest
import trio

from simulator.check.lab import predict_calls
from simulator.check.labfacts import gather_lab_facts, lab_crl_base
from simulator.lab import load_lab
from simulator.lab.settings import edge_settings
from simulator.pki import issue_pki
from simulator.run.runner import discover

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ROOT / "scenarios"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, object]]:
    """Every call's observed outcome, by call id, from one run of the whole catalogue."""
    out = tmp_path_factory.mktemp("served") / "results.json"
    subprocess.run(
        [sys.executable, "-m", "simulator", "run", str(SCENARIOS), "--json", str(out)],
        cwd=ROOT,
        check=False,
        capture_output=True,
        timeout=600,
    )
    results = json.loads(out.read_text())
    return {call["id"]: call["got"] for lab in results["labs"] for call in lab["calls"]}


def _predicted(path: Path, work: Path) -> dict[str, tuple[object, object, object]]:
    lab = load_lab(path)
    now = dt.datetime.now(dt.UTC)
    base = lab_crl_base(lab)
    issued = issue_pki(lab.certs, work / "certs", now=now, crl_url=base)
    facts = trio.run(lambda: gather_lab_facts(lab, issued, now=now, crl_base=base))
    settings = edge_settings(lab)
    out: dict[str, tuple[object, object, object]] = {}
    for number, p in enumerate(predict_calls(lab, settings, facts), start=1):
        status = "tls-refused" if p.status is None else p.status
        out[f"call-{number}"] = (status, p.rule, p.ms_diagnostics)
    return out


def test_every_call_of_every_scenario_is_predicted_exactly(
    served: dict[str, dict[str, object]], tmp_path: Path
) -> None:
    drift: list[str] = []
    checked = 0
    for path, ident in discover([SCENARIOS]):
        for call, predicted in _predicted(path, tmp_path / ident.replace("/", "_")).items():
            got = served.get(f"{ident} {call}")
            if got is None:
                continue
            observed = (got["status"], got["rule"], got["ms_diagnostics"])
            checked += 1
            if observed != predicted:
                drift.append(f"{ident} {call}: check says {predicted}, serve gave {observed}")
    assert checked > 50
    assert drift == [], "\n".join(drift)


#: The rules issue 15 added (both directions): the catalogue stages every one, so each
#: is predicted by fedsim check and compared with fedsim serve above.
ISSUE_15_RULES = {
    "route-untrusted",
    "user-federation-off",
    "discovered-rate",
    "discovered-contacts",
    "not-a-contact",
    "split-domain-invalid",
    "split-domain-type",
    "tenant-federation-off",
    "tenant-blocked-domain",
    "tenant-domain-not-allowed",
    "cert-revoked",
    "crl-offline",
}


def test_every_rule_of_the_rest_of_the_policy_is_compared(
    served: dict[str, dict[str, object]],
) -> None:
    seen = {got["rule"] for got in served.values()}
    assert seen >= ISSUE_15_RULES, sorted(ISSUE_15_RULES - seen)
    # Hosting providers and revocation refused at TLS show as these rules' calls too.
    assert {"forwarded", "tls-handshake-failed", "srv-not-in-domain"} <= seen
