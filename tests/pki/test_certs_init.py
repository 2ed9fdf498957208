"""``fedsim certs init``: a lab's whole PKI in one command, checked by openssl."""

from __future__ import annotations

import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from simulator.cli import main


@pytest.mark.interop
def test_init_writes_the_seed_pki_that_openssl_verifies(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.fail(
            "openssl is not on PATH: make test (.ci/ensure-packages) installs the real peers"
        )
    out = tmp_path / "certs"
    assert main(["certs", "init", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "vcse.steven.lab" in printed
    assert "trust anchors:" in printed
    for leaf in ("sip.skype.lab", "vcse.steven.lab"):
        done = subprocess.run(
            [openssl, "verify", "-CAfile", str(out / "public-root.crt"), str(out / f"{leaf}.crt")],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip().endswith(": OK")
        assert stat.S_IMODE((out / f"{leaf}.key").stat().st_mode) == 0o600
    # A leaf of the public root does not verify against the private root.
    wrong = subprocess.run(
        [
            openssl,
            "verify",
            "-CAfile",
            str(out / "private-root.crt"),
            str(out / "sip.skype.lab.crt"),
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert wrong.returncode != 0


def test_init_with_a_missing_lab_file_is_one_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["certs", "init", str(tmp_path / "c"), "--lab", str(tmp_path / "nope.toml")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("fedsim: error: ")
    assert err.count("\n") == 1
