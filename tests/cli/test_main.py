"""The ``fedsim`` entry point: help, version, one-line errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from simulator import __version__
from simulator.cli import main

SEED_LAB = Path(__file__).resolve().parents[2] / "scenarios/seeds/05-fixed-lab.toml"


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"fedsim {__version__}"


def test_help_lists_examples(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "usage: fedsim" in out
    assert "examples:" in out


def test_unknown_command_is_one_line_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["no-such-command"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("fedsim: error: ")
    assert err.count("\n") == 1
    assert "Traceback" not in err


@pytest.mark.parametrize(
    "argv",
    [
        ["serve", "--rule", "discovered_rate"],
        ["serve", "--rule", "client_ekus=ignore"],
        ["check", "--domain", "cms.steven.lab", "--cert", "none.pem", "--rule", "client_eku=maybe"],
        ["check", "--lab", str(SEED_LAB), "--rule", "x"],
    ],
)
def test_a_bad_rule_option_is_one_line_exit_2(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """Before anything is bound, issued or resolved: the option is named, no traceback."""
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("fedsim: error: --rule")
    assert err.count("\n") == 1
    assert "Traceback" not in err


def test_console_script_runs_as_module() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "simulator", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0
    assert done.stdout.strip() == f"fedsim {__version__}"
