"""Security defaults: loopback unless told, non-loopback binds said aloud, private keys 0600
and never logged, and no eval/exec/pickle/shell anywhere in simulator/."""

from __future__ import annotations

import ast
import datetime as dt
import stat
from pathlib import Path
from typing import Any

import pytest

from simulator.commands.serve import banner
from simulator.edge.app import LabAddresses
from simulator.lab import builtin_lab, load_lab_text
from simulator.pki import CertSpec, issue_pki

SIMULATOR = Path(__file__).resolve().parents[2] / "simulator"
MINIMAL = """
name = "m"
[edge]
fqdn = "sip.skype.lab"
domains = ["skype.lab"]
cert = "sip.skype.lab"
trust = ["root"]
[certs.root]
ca = true
[certs."sip.skype.lab"]
issuer = "root"
"""


@pytest.mark.parametrize("lab", ["builtin", "minimal-file"])
def test_every_listener_defaults_to_loopback(lab: str, tmp_path: Path) -> None:
    loaded = builtin_lab() if lab == "builtin" else load_lab_text(MINIMAL, path=tmp_path / "m.toml")
    assert loaded.edge.listen[0] == "127.0.0.1"
    assert loaded.edge.clients[0] == "127.0.0.1"
    assert loaded.dns.listen[0] == "127.0.0.1"


def _addresses(tmp_path: Path, host: str, issued: Any) -> LabAddresses:
    return LabAddresses(
        dns=(host, 53),
        federation=(host, 5061),
        clients=("127.0.0.1", 5062),
        edge_cert=issued["sip.skype.lab"].cert_path,
        edge_ca=issued["public-root"].cert_path,
        log_dir=tmp_path,
        certs_dir=tmp_path / "certs",
        issued=issued,
    )


def test_binding_beyond_loopback_is_printed(tmp_path: Path) -> None:
    lab = builtin_lab()
    issued = issue_pki(lab.certs, tmp_path / "certs", now=dt.datetime.now(dt.UTC))
    loud = banner(lab, _addresses(tmp_path, "0.0.0.0", issued))
    assert "note        --listen binds 0.0.0.0: reachable from other machines" in loud
    assert "note        --dns-listen binds 0.0.0.0" in loud
    quiet = banner(lab, _addresses(tmp_path, "127.0.0.1", issued))
    assert "reachable from other machines" not in quiet


def test_generated_private_keys_are_0600(tmp_path: Path) -> None:
    issued = issue_pki(
        [CertSpec(name="r", ca=True), CertSpec(name="leaf", issuer="r", cn="leaf.lab")],
        tmp_path,
        now=dt.datetime.now(dt.UTC),
    )
    for item in issued.values():
        assert stat.S_IMODE(item.key_path.stat().st_mode) == 0o600, item.key_path


async def test_private_keys_never_reach_logs_or_console(start_edge: Any, sip: Any) -> None:
    console: list[str] = []
    edge = await start_edge(console=console.append)
    client = await edge.connect()
    await client.send(sip.request("OPTIONS", "keys"))
    assert (await client.response()).status == 200
    await client.send(sip.request("OPTIONS", "keys2", domain="acano.steven.lab"))
    assert (await client.response()).status == 504
    written = "\n".join(console) + edge.edge_log() + (edge.logs / "events.jsonl").read_text()
    for item in edge.addresses.issued.values():
        secret = item.key_path.read_text().splitlines()[1]  # first base64 line of the key
        assert secret not in written
    assert "PRIVATE KEY" not in written


FORBIDDEN_CALLS = {"eval", "exec", "compile", "__import__"}
FORBIDDEN_MODULES = {"pickle", "cPickle", "marshal", "shelve", "dill"}
FORBIDDEN_ATTRS = {("os", "system"), ("os", "popen"), ("os", "execv"), ("os", "execvp")}


def _violations(path: Path, root: Path = SIMULATOR.parent) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[str] = []
    for node in ast.walk(tree):
        where = f"{path.relative_to(root)}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name) and func.id in FORBIDDEN_CALLS:
                found.append(f"{where}: {func.id}()")
            if (
                isinstance(func, ast.Attribute)
                and isinstance(func.value, ast.Name)
                and (func.value.id, func.attr) in FORBIDDEN_ATTRS
            ):
                found.append(f"{where}: {func.value.id}.{func.attr}()")
            for keyword in node.keywords:
                if (
                    keyword.arg == "shell"
                    and isinstance(keyword.value, ast.Constant)
                    and keyword.value.value is not False
                ):
                    found.append(f"{where}: shell={keyword.value.value!r}")
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names.append(node.module)
            for name in names:
                if name.split(".")[0] in FORBIDDEN_MODULES:
                    found.append(f"{where}: import {name}")
    return found


def test_no_eval_exec_pickle_or_shell_in_simulator() -> None:
    files = sorted(SIMULATOR.rglob("*.py"))
    assert len(files) > 40
    found = [v for path in files for v in _violations(path)]
    assert found == []


def test_the_scanner_catches_each_forbidden_form(tmp_path: Path) -> None:
    sample = tmp_path / "probe.py"
    sample.write_text(
        "import pickle\nimport os, subprocess\neval('1')\nexec('x=1')\nos.system('ls')\n"
        "subprocess.run('ls', shell=True)\nfrom marshal import loads\n"
    )
    kinds = sorted(v.split(": ", 1)[1] for v in _violations(sample, tmp_path))
    assert kinds == sorted(
        ["import pickle", "eval()", "exec()", "os.system()", "shell=True", "import marshal"]
    )
