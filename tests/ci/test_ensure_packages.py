""".ci/ensure-packages: what it installs, how, and what it says when it cannot.

The script runs with a PATH of shims only (``dpkg-query``, ``apt-get``, ``sudo``,
``id``, plus the real ``env``), so no real package is ever queried, installed or
removed. The fake dpkg database is a file the fake ``apt-get install`` appends to;
every shim appends its argv to a log the tests read.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from simulator.bench.run import ENSURE_PACKAGES, PACKAGES

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / ".ci" / "ensure-packages"
LIST = REPO / ".ci" / "packages"

DPKG_QUERY = """\
# fake dpkg-query -W -f=FORMAT PKG...: a "PKG STATUS" line per package in $FAKE_DB
echo "dpkg-query $*" >>"$FAKE_LOG"
status=0
for arg in "$@"; do
    [[ $arg == -* ]] && continue
    line=""
    while read -r name rest; do
        [[ $name == "$arg" ]] && line="$name $rest"
    done <"$FAKE_DB"
    if [[ -n $line ]]; then echo "$line"; else
        echo "dpkg-query: no packages found matching $arg" >&2; status=1; fi
done
exit $status
"""

APT_GET = """\
# fake apt-get: logs who ran it and how; "install" adds the packages to $FAKE_DB
echo "apt-get[${FAKE_VIA:-direct}] DEBIAN_FRONTEND=${DEBIAN_FRONTEND:-} $*" >>"$FAKE_LOG"
[[ " $* " == *" update "* && -n ${FAKE_UPDATE_FAILS:-} ]] && exit 100
installing=""
for arg in "$@"; do
    [[ $arg == install ]] && { installing=1; continue; }
    [[ -n $installing && $arg != -* ]] && echo "$arg install ok installed" >>"$FAKE_DB"
done
exit 0
"""

SUDO = """\
# fake sudo: runs the command (as if root) when $FAKE_SUDO=ok, else wants a password
echo "sudo $*" >>"$FAKE_LOG"
if [[ ${FAKE_SUDO:-} != ok ]]; then echo "sudo: a password is required" >&2; exit 1; fi
[[ $1 == -n ]] && shift
FAKE_VIA=sudo "$@"
"""

DEBCONF = """\
# fake debconf-set-selections: logs who ran it and the answers it was given on stdin
read -r answer
echo "debconf-set-selections[${FAKE_VIA:-direct}] $answer" >>"$FAKE_LOG"
"""

ID = """\
echo "id $*" >>"$FAKE_LOG"
echo "${FAKE_UID:-0}"
"""


def listed() -> list[str]:
    """The package names of .ci/packages, in order."""
    names = []
    for line in LIST.read_text(encoding="utf-8").splitlines():
        words = line.split("#", 1)[0].split()
        if words:
            names.append(words[0])
    return names


@dataclass
class Run:
    code: int
    stderr: str
    log: list[str]

    @property
    def apt(self) -> list[str]:
        return [line for line in self.log if line.startswith("apt-get")]


@dataclass
class FakeMachine:
    """A PATH of shims and a fake dpkg database, in a temp dir."""

    root: Path
    uid: int = 0
    sudo: str | None = None  # None: no sudo on PATH; "ok"; "password"

    def __post_init__(self) -> None:
        self.bin = self.root / "bin"
        self.bin.mkdir()
        self.db = self.root / "dpkg.db"
        self.db.write_text("", encoding="utf-8")
        self.log = self.root / "calls.log"
        bash = shutil.which("bash")
        env = shutil.which("env")
        assert bash is not None
        assert env is not None
        shims = {
            "dpkg-query": DPKG_QUERY,
            "apt-get": APT_GET,
            "id": ID,
            "debconf-set-selections": DEBCONF,
        }
        if self.sudo is not None:
            shims["sudo"] = SUDO
        for name, body in shims.items():
            path = self.bin / name
            path.write_text(f"#!{bash}\nPATH={self.bin}\n{body}", encoding="utf-8")
            path.chmod(0o755)
        (self.bin / "env").symlink_to(env)
        self.bash = bash

    def install(self, *packages: str) -> None:
        with self.db.open("a", encoding="utf-8") as db:
            for package in packages:
                db.write(f"{package} install ok installed\n")

    def run(self, *args: str, update_fails: bool = False) -> Run:
        self.log.write_text("", encoding="utf-8")
        env = {
            "PATH": str(self.bin),
            "FAKE_DB": str(self.db),
            "FAKE_LOG": str(self.log),
            "FAKE_UID": str(self.uid),
            "FAKE_SUDO": self.sudo or "",
        }
        if update_fails:
            env["FAKE_UPDATE_FAILS"] = "1"
        done = subprocess.run(
            [self.bash, str(SCRIPT), *args],
            env=env,
            stdin=subprocess.DEVNULL,  # no TTY: nothing may prompt
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            start_new_session=True,
        )
        assert done.stdout == ""
        return Run(
            code=done.returncode,
            stderr=done.stderr,
            log=self.log.read_text(encoding="utf-8").splitlines(),
        )


MISSING = ["stunnel4", "chromium"]


def all_but(*missing: str) -> list[str]:
    return [p for p in listed() if p not in missing]


def test_nothing_missing_is_one_dpkg_query_and_no_apt(tmp_path: Path) -> None:
    machine = FakeMachine(tmp_path)
    machine.install(*listed())
    run = machine.run()
    assert (run.code, run.stderr) == (0, "")
    assert len(run.log) == 1
    assert run.log[0].startswith("dpkg-query -W ")


def test_as_root_it_updates_then_installs_exactly_the_missing_ones(tmp_path: Path) -> None:
    machine = FakeMachine(tmp_path, uid=0)
    machine.install(*all_but(*MISSING))
    run = machine.run()
    assert run.code == 0, run.stderr
    assert run.apt == [
        "apt-get[direct] DEBIAN_FRONTEND=noninteractive -qq -y update",
        "apt-get[direct] DEBIAN_FRONTEND=noninteractive -qq -y install stunnel4 chromium",
    ]
    assert not any(line.startswith("sudo") for line in run.log)
    assert run.stderr == "ensure-packages: installing stunnel4 chromium\n"


def test_it_is_idempotent(tmp_path: Path) -> None:
    machine = FakeMachine(tmp_path)
    machine.install(*all_but(*MISSING))
    assert machine.run().code == 0
    again = machine.run()
    assert (again.code, again.stderr, again.apt) == (0, "", [])


def test_not_root_with_passwordless_sudo_installs_through_sudo_n(tmp_path: Path) -> None:
    machine = FakeMachine(tmp_path, uid=1000, sudo="ok")
    machine.install(*all_but(*MISSING))
    run = machine.run()
    assert run.code == 0, run.stderr
    assert run.apt == [
        "apt-get[sudo] DEBIAN_FRONTEND=noninteractive -qq -y update",
        "apt-get[sudo] DEBIAN_FRONTEND=noninteractive -qq -y install stunnel4 chromium",
    ]
    sudo = [line for line in run.log if line.startswith("sudo")]
    assert sudo
    assert all(line.startswith("sudo -n ") for line in sudo)


@pytest.mark.parametrize("sudo", [None, "password"], ids=["no-sudo", "sudo-wants-password"])
def test_no_way_to_install_is_one_line_with_the_command(tmp_path: Path, sudo: str | None) -> None:
    machine = FakeMachine(tmp_path, uid=1000, sudo=sudo)
    machine.install(*all_but(*MISSING))
    run = machine.run()
    assert run.code == 1
    assert run.apt == []
    assert run.stderr.count("\n") == 1
    assert run.stderr.startswith("ensure-packages: missing Debian packages stunnel4 chromium ")
    assert run.stderr.rstrip().endswith("`sudo apt-get install -y stunnel4 chromium`")


def test_a_failed_apt_get_ends_with_the_line_to_run_by_hand(tmp_path: Path) -> None:
    machine = FakeMachine(tmp_path, uid=0)
    machine.install(*all_but("kamailio"))
    run = machine.run(update_fails=True)
    assert run.code == 1
    last = run.stderr.strip().splitlines()[-1]
    assert "apt-get update failed" in last
    assert last.endswith("`apt-get install -y kamailio`")


def test_a_removed_package_with_config_files_left_counts_as_missing(tmp_path: Path) -> None:
    machine = FakeMachine(tmp_path)
    machine.install(*all_but("baresip-core"))
    with machine.db.open("a", encoding="utf-8") as db:
        db.write("baresip-core deinstall ok config-files\n")
    run = machine.run()
    assert run.code == 0
    assert run.apt[-1].endswith(" install baresip-core")


def test_named_packages_limit_the_check_to_them(tmp_path: Path) -> None:
    machine = FakeMachine(tmp_path)
    machine.install(*all_but("kamailio", "stunnel4"))
    run = machine.run("kamailio", "sip-tester")
    assert run.code == 0
    assert run.apt[-1].endswith(" install kamailio")


def test_a_package_not_in_the_list_is_refused(tmp_path: Path) -> None:
    machine = FakeMachine(tmp_path)
    run = machine.run("cowsay")
    assert run.code == 2
    assert run.stderr == (
        "ensure-packages: cowsay is not listed in .ci/packages "
        "(add it there, with the test that drives it)\n"
    )
    assert run.log == []


def test_every_listed_package_says_which_tests_drive_it() -> None:
    for line in LIST.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            package, _, comment = line.partition("#")
            assert len(package.split()) == 1, line
            assert "tests/" in comment, line


def test_ci_make_and_bench_install_from_the_one_list() -> None:
    ci_run = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    assert "bash .ci/ensure-packages" in ci_run
    assert "apt-get" not in ci_run
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    assert "\t@bash .ci/ensure-packages\n" in makefile
    assert "test: packages " in makefile
    assert ENSURE_PACKAGES == SCRIPT
    assert {*PACKAGES.values(), "kamailio-tls-modules"} <= set(listed())
    assert os.access(SCRIPT, os.X_OK)


@pytest.mark.parametrize(("uid", "sudo", "via"), [(0, None, "direct"), (1000, "ok", "sudo")])
def test_tsharks_capture_question_is_answered_before_apt_get(
    tmp_path: Path, uid: int, sudo: str | None, via: str
) -> None:
    """wireshark-common asks whether non-root users may capture: preseeded "no"."""
    machine = FakeMachine(tmp_path, uid=uid, sudo=sudo)
    machine.install(*all_but("tshark"))
    run = machine.run()
    assert run.code == 0, run.stderr
    answer = (
        f"debconf-set-selections[{via}] "
        "wireshark-common wireshark-common/install-setuid boolean false"
    )
    steps = [line for line in run.log if line.startswith(("debconf", "apt-get"))]
    assert steps[0] == answer
    assert steps[-1].endswith(" install tshark")


def test_no_debconf_answer_when_tshark_is_installed(tmp_path: Path) -> None:
    machine = FakeMachine(tmp_path)
    machine.install(*all_but("stunnel4"))
    run = machine.run()
    assert run.code == 0, run.stderr
    assert not any(line.startswith("debconf") for line in run.log)
