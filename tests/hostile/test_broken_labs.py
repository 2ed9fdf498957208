"""A catalogue of broken labs through the real CLI: ``fedsim serve`` and ``fedsim call``.

Each case must end with exit status 2 and exactly one stderr line, ``fedsim:
error: ...`` naming the file, with no traceback. tests/lab/test_errors.py checks
64 messages through ``load_lab``; this walks the command line, including what
only shows when the lab is used: unreadable files (a directory where a file is
expected: root reads through chmod 000), a PEM that is not a certificate, a
key that does not match its certificate.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from simulator.cli import main
from simulator.pki import CertSpec, issue_pki

BASE = """\
name = "broken"
[edge]
fqdn = "sip.skype.lab"
domains = ["skype.lab"]
listen = "127.0.0.1:0"
clients = "127.0.0.1:0"
cert = {edge_cert}
trust = {trust}
[dns]
listen = "127.0.0.1:0"
zones = {zones}
[certs.root]
ca = true
public = true
[certs."sip.skype.lab"]
issuer = "root"
[certs."vcse.steven.lab"]
issuer = "root"
[peers.expe]
cert = {peer_cert}
[[calls]]
direction = "inbound"
via = "expe"
from = "sip:2000@steven.lab"
to = "sip:bob@skype.lab"
expect = {{ status = 200 }}
"""
GOOD = {
    "edge_cert": '"sip.skype.lab"',
    "trust": '["root"]',
    "zones": "[]",
    "peer_cert": '"vcse.steven.lab"',
}


@dataclass(frozen=True)
class Broken:
    """One broken lab: a BASE field replaced, or raw TOML lines swapped (old -> new)."""

    field: str = ""
    value: str = ""
    swap: tuple[str, str] = ("", "")
    commands: tuple[str, ...] = ("serve", "call")

    def text(self) -> str:
        fields = dict(GOOD)
        if self.field:
            fields[self.field] = self.value
        text = BASE.format(**fields)
        old, new = self.swap
        if old:
            assert old in text, old
            text = text.replace(old, new, 1)
        return text


def wrong(old: str, new: str) -> Broken:
    return Broken(swap=(old, new))


CATALOGUE: dict[str, Broken] = {
    # every kind of key with a value of the wrong type
    "name-int": wrong('name = "broken"', "name = 1"),
    "fqdn-int": wrong('fqdn = "sip.skype.lab"', "fqdn = 5"),
    "domains-string": wrong('domains = ["skype.lab"]', 'domains = "skype.lab"'),
    "domains-ints": wrong('domains = ["skype.lab"]', "domains = [1, 2]"),
    "listen-int": wrong('listen = "127.0.0.1:0"\nclients', "listen = 5061\nclients"),
    "listen-no-port": wrong('listen = "127.0.0.1:0"\nclients', 'listen = "127.0.0.1"\nclients'),
    "cert-int": Broken(field="edge_cert", value="7"),
    "cert-table-missing-key": Broken(field="edge_cert", value='{ cert = "a.crt" }'),
    "trust-string": Broken(field="trust", value='"root"'),
    "trust-unknown-name": Broken(field="trust", value='["nobody"]'),
    "dns-listen-int": wrong('[dns]\nlisten = "127.0.0.1:0"', "[dns]\nlisten = 53"),
    "zones-string": Broken(field="zones", value='"a.zone"'),
    "ca-string": wrong("ca = true", 'ca = "yes"'),
    "public-int": wrong("public = true", "public = 1"),
    "issuer-list": wrong('issuer = "root"', 'issuer = ["root"]'),
    "peer-cert-int": Broken(field="peer_cert", value="7"),
    "direction-int": wrong('direction = "inbound"', "direction = 1"),
    "direction-unknown": wrong('direction = "inbound"', 'direction = "sideways"'),
    "expect-int": wrong("expect = { status = 200 }", "expect = 200"),
    "status-string": wrong("expect = { status = 200 }", 'expect = { status = "200" }'),
    "edge-table-is-string": wrong('[edge]\nfqdn = "sip.skype.lab"', 'edge = "x"\n[edgy]'),
    "toml-syntax": wrong('fqdn = "sip.skype.lab"', "fqdn = sip.skype.lab"),
    "unknown-key": wrong('fqdn = "sip.skype.lab"', 'fqdn = "sip.skype.lab"\nfqnd = "x"'),
    # files that are missing, unreadable or not what they claim
    "trust-file-missing": Broken(field="trust", value='["missing.pem"]'),
    "zone-file-missing": Broken(field="zones", value='["missing.zone"]'),
    "trust-file-is-a-directory": Broken(field="trust", value='["adir.pem"]'),
    "zone-file-is-a-directory": Broken(field="zones", value='["adir.zone"]'),
    # only the Edge reads its trust list and zones: `fedsim call` does not, so serve only
    "trust-pem-not-a-certificate": Broken(field="trust", value='["junk.pem"]', commands=("serve",)),
    "zone-file-binary": Broken(field="zones", value='["binary.zone"]', commands=("serve",)),
    "edge-cert-not-a-certificate": Broken(
        field="edge_cert", value='{ cert = "junk.pem", key = "b.key" }', commands=("serve",)
    ),
    "edge-key-does-not-match": Broken(
        field="edge_cert", value='{ cert = "a.crt", key = "b.key" }', commands=("serve",)
    ),
    "edge-key-is-a-directory": Broken(
        field="edge_cert", value='{ cert = "a.crt", key = "adir.pem" }', commands=("serve",)
    ),
    "peer-key-does-not-match": Broken(
        field="peer_cert", value='{ cert = "a.crt", key = "b.key" }', commands=("call",)
    ),
    "peer-cert-not-a-certificate": Broken(
        field="peer_cert", value='{ cert = "junk.pem", key = "b.key" }', commands=("call",)
    ),
}


@pytest.fixture(scope="module")
def material(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with two real certificates and keys, junk, and directories posing as files."""
    folder = tmp_path_factory.mktemp("broken-labs")
    issued = issue_pki(
        [
            CertSpec(name="r", ca=True),
            CertSpec(name="a", issuer="r", cn="a.lab"),
            CertSpec(name="b", issuer="r", cn="b.lab"),
        ],
        folder / "pki",
        now=dt.datetime.now(dt.UTC),
    )
    (folder / "a.crt").write_bytes(issued["a"].cert_path.read_bytes())
    (folder / "b.key").write_bytes(issued["b"].key_path.read_bytes())
    (folder / "junk.pem").write_text(
        "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n"
    )
    (folder / "binary.zone").write_bytes(b"\xff\xfe\x00\x01 IN A \x80\x81\n")
    (folder / "adir.pem").mkdir()
    (folder / "adir.zone").mkdir()
    return folder


@pytest.fixture
def watchdog() -> Iterator[None]:
    """If a broken lab were served anyway, SIGINT stops ``fedsim serve`` (exit 0: a failure)
    instead of hanging the suite."""
    previous = signal.signal(signal.SIGALRM, lambda *_: os.kill(os.getpid(), signal.SIGINT))
    signal.setitimer(signal.ITIMER_REAL, 30)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _argv(command: str, lab: Path, work: Path) -> list[str]:
    if command == "serve":
        return [
            "serve",
            str(lab),
            "--log-dir",
            str(work / "logs"),
            "--certs-dir",
            str(work / "certs"),
        ]
    return [
        "call", str(lab), "--via", "expe", "--certs-dir", str(work / "certs"),
        "--edge", "127.0.0.1:9", "--timeout", "2",
    ]  # fmt: skip


CASES = [
    pytest.param(name, command, id=f"{command}-{name}")
    for name, broken in CATALOGUE.items()
    for command in broken.commands
]


@pytest.mark.usefixtures("watchdog")
@pytest.mark.parametrize(("name", "command"), CASES)
def test_broken_lab_is_one_error_line_and_exit_2(
    name: str,
    command: str,
    material: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    lab = material / f"{name}.toml"
    lab.write_text(CATALOGUE[name].text(), encoding="utf-8")
    code = main(_argv(command, lab, tmp_path))
    out, err = capsys.readouterr()
    assert code == 2, (out, err)
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("fedsim: error: "), err
    assert "Traceback" not in out + err
    assert "fedsim: stopped" not in out  # nothing was served


@pytest.mark.usefixtures("watchdog")
@pytest.mark.parametrize("command", ["serve", "call"])
@pytest.mark.parametrize("what", ["missing", "directory"])
def test_lab_file_itself_missing_or_a_directory(
    command: str, what: str, material: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lab = material / ("nothing-here.toml" if what == "missing" else "adir.pem")
    code = main(_argv(command, lab, tmp_path))
    _, err = capsys.readouterr()
    assert code == 2
    assert len(err.splitlines()) == 1, err
    assert str(lab.name) in err


def test_catalogue_base_is_a_good_lab(material: Path, tmp_path: Path) -> None:
    """The catalogue breaks a lab that loads: each case fails for its own reason."""
    from simulator.lab import load_lab

    lab = material / "good.toml"
    lab.write_text(BASE.format(**GOOD), encoding="utf-8")
    assert load_lab(lab).name == "broken"
