"""``[edge] profile``, ``[edge] seed`` and ``[edge.rules]``: defaults, overrides, errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from simulator.errors import LabError
from simulator.lab import edge_settings, load_lab_text, with_profile
from simulator.policy import PROFILES, EdgeRules

MINIMAL = """\
[edge]
fqdn = "sip.skype.lab"
domains = ["skype.lab"]
cert = "sip.skype.lab"
trust = ["root"]
{extra}
[certs.root]
ca = true
"""


def load(tmp_path: Path, extra: str) -> object:
    return load_lab_text(MINIMAL.format(extra=extra), path=tmp_path / "lab.toml")


def edge_of(tmp_path: Path, extra: str = "") -> object:
    return load_lab_text(MINIMAL.format(extra=extra), path=tmp_path / "lab.toml").edge


@pytest.mark.parametrize("name", list(PROFILES))
def test_a_profile_sets_tls_server_trust_and_rule_defaults(tmp_path: Path, name: str) -> None:
    edge = edge_of(tmp_path, f'profile = "{name}"')
    product = PROFILES[name]  # type: ignore[index]
    assert edge.profile == name  # type: ignore[attr-defined]
    assert edge.tls == name  # type: ignore[attr-defined]
    assert edge.server_header == product.server_header  # type: ignore[attr-defined]
    assert edge.hosted is product.public_ca_only  # type: ignore[attr-defined]
    assert edge.rules == product.rules  # type: ignore[attr-defined]


def test_the_default_profile_is_sfb2015_and_unseeded(tmp_path: Path) -> None:
    edge = edge_of(tmp_path)
    assert (edge.profile, edge.tls, edge.server_header, edge.seed) == (  # type: ignore[attr-defined]
        "sfb2015",
        "sfb2015",
        "RTC/6.0",
        None,
    )


def test_explicit_keys_win_over_the_profile(tmp_path: Path) -> None:
    edge = edge_of(
        tmp_path,
        'profile = "office365"\ntls = "sfb2015"\nhosted = false\nserver_header = "RTC/5.0"\n'
        'seed = 42\n[edge.rules]\nblock_subdomains = true\nclient_eku = "ignore"',
    )
    assert edge.tls == "sfb2015"  # type: ignore[attr-defined]
    assert edge.hosted is False  # type: ignore[attr-defined]
    assert edge.server_header == "RTC/5.0"  # type: ignore[attr-defined]
    assert edge.seed == 42  # type: ignore[attr-defined]
    assert edge.rules == EdgeRules(block_subdomains=True, client_eku="ignore")  # type: ignore[attr-defined]


def test_the_old_domain_source_key_still_works(tmp_path: Path) -> None:
    edge = edge_of(tmp_path, 'domain_source = "from"')
    assert edge.rules.domain_source == "from"  # type: ignore[attr-defined]
    assert edge.domain_source == "from"  # type: ignore[attr-defined]


def test_settings_carry_the_rules_and_profile(tmp_path: Path) -> None:
    lab = load_lab_text(
        MINIMAL.format(extra='profile = "sfb2019"\n[edge.rules]\npeer_wildcard = true'),
        path=tmp_path / "lab.toml",
    )
    settings = edge_settings(lab)
    assert settings.profile == "sfb2019"
    assert settings.rules.peer_wildcard is True
    assert settings.server_header == "RTC/7.0"
    assert with_profile(lab.edge, "sfb2015", {}).tls == "sfb2015"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            '[edge.rules]\nclient_ekus = "ignore"',
            "[edge.rules] key 'client_ekus': unknown key (did you mean 'client_eku'?)",
        ),
        ('profile = "sfb2109"', "not one of"),
        ('[edge.rules]\npeer_wildcard = "yes"', "expected true or false"),
        ('[edge.rules]\nclient_eku = "maybe"', "'maybe' is not one of"),
        ("seed = -1", "expected a non-negative integer"),
        ('domain_source = "pai"\n[edge.rules]\ndomain_source = "from"', "set twice"),
    ],
)
def test_bad_keys_are_one_line_errors_with_file_and_line(
    tmp_path: Path, extra: str, message: str
) -> None:
    with pytest.raises(LabError) as info:
        load(tmp_path, extra)
    text = str(info.value)
    assert message in text
    assert "lab.toml:" in text
