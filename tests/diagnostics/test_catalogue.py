"""The catalogue holds only what the reference says, and explains every entry."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from simulator.diagnostics import (
    HRESULTS,
    MS_DIAGNOSTICS,
    RESULT_CODES,
    TLS_ALERT_HRESULTS,
    UNVERIFIED_HEX,
    hresult,
    lookup_result,
)
from simulator.diagnostics.catalogue import DiagnosticCode, ResultCode, weakest

REFERENCE = "reference/ms-federation.md"
REPO = Path(__file__).resolve().parents[2]
HEX = re.compile(r"0x[0-9a-fA-F]{8}")


@pytest.fixture(scope="module")
def reference(shared_dir: Path) -> str:
    return (shared_dir / REFERENCE).read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def field_cases(shared_dir: Path) -> str:
    return (shared_dir / "reference" / "field-cases.md").read_text(encoding="utf-8")


def test_every_diagnostic_string_appears_verbatim_in_the_references(
    reference: str, field_cases: str
) -> None:
    both = reference + field_cases
    for entry in MS_DIAGNOSTICS.values():
        assert entry.reason in both, entry.code
        if entry.spec_reason is not None:
            assert entry.spec_reason in both, entry.code


def test_every_microsoft_result_code_appears_verbatim_in_the_reference(reference: str) -> None:
    lowered = reference.lower()
    for entry in RESULT_CODES.values():
        if entry.symbol.startswith("EMU_UNVERIFIED_"):
            continue
        if not entry.hex_known:
            # A symbol seen without its value or text (field cases C11): the symbol
            # is verbatim, the rest is labelled, never invented.
            assert entry.symbol in reference
            assert entry.hex == UNVERIFIED_HEX
            assert entry.fidelity != "verbatim"
            assert entry.text.startswith("fedsim: ")
            continue
        assert entry.fidelity == "verbatim"
        assert entry.symbol in reference
        assert entry.text in reference
        assert entry.hex.lower() in lowered
        # The log line is printed exactly as the reference quotes it.
        assert f"{entry.hex} {entry.symbol}" in reference


def test_markers_are_synthetic_and_say_so() -> None:
    markers = [r for r in RESULT_CODES.values() if r.symbol.startswith("EMU_UNVERIFIED_")]
    assert {
        "EMU_UNVERIFIED_NO_SRV",
        "EMU_UNVERIFIED_DNS_FAILURE",
        "EMU_UNVERIFIED_BLOCKED_DOMAIN",
        "EMU_UNVERIFIED_FEDERATION_DISABLED",
        "EMU_UNVERIFIED_DOMAIN_NOT_ALLOWED",
        "EMU_UNVERIFIED_PROXY_FQDN_MISMATCH",
        "EMU_UNVERIFIED_CERT_UNTRUSTED_ROOT",
        "EMU_UNVERIFIED_CERT_EXPIRED",
        "EMU_UNVERIFIED_TLS_HANDSHAKE_FAILED",
    } <= {m.symbol for m in markers}
    for marker in markers:
        assert marker.hex == UNVERIFIED_HEX
        assert marker.fidelity == "inferred"
        assert marker.text.startswith("fedsim:")
        assert "unknown" in marker.text


def test_verbatim_diagnostics_are_the_reference_v_rows(reference: str) -> None:
    # U rows of reference §3.2 must never be presented as verbatim.
    assert MS_DIAGNOSTICS[1036].fidelity == "unverified"
    assert MS_DIAGNOSTICS[1046].fidelity == "unverified"
    # Wire strings differ from the spec for 1009/1010; the wire string is emitted.
    assert MS_DIAGNOSTICS[1009].reason == "No match for domain in DNS SRV results"
    assert MS_DIAGNOSTICS[1010].reason == (
        "Certificate trust with another server could not be established"
    )
    assert MS_DIAGNOSTICS[1008].reason == "Unable to resolve DNS SRV record"
    # No wire form seen: the spec string with its period.
    assert MS_DIAGNOSTICS[1014].reason == "Unable to resolve DNS A record."
    assert (MS_DIAGNOSTICS[1002].status, MS_DIAGNOSTICS[1002].status_fidelity) == (
        403,
        "verbatim",
    )
    assert MS_DIAGNOSTICS[1014].status_fidelity == "inferred"
    assert MS_DIAGNOSTICS[1034].status is None  # the peer's status passes through


@pytest.mark.parametrize("entry", list(MS_DIAGNOSTICS.values()), ids=lambda e: str(e.code))
def test_every_diagnostic_is_explained(entry: DiagnosticCode) -> None:
    assert entry.meaning.endswith(".")
    assert entry.fix.endswith(".")
    assert entry.causes
    assert all(c.endswith(".") for c in entry.causes)
    assert entry.source


@pytest.mark.parametrize("entry", list(RESULT_CODES.values()), ids=lambda e: e.symbol)
def test_every_result_code_is_explained(entry: ResultCode) -> None:
    assert entry.meaning.endswith(".")
    assert entry.fix.endswith(".")
    assert entry.causes
    assert all(c.endswith(".") for c in entry.causes)
    assert entry.source


def test_no_hex_code_outside_the_reference(reference: str) -> None:
    known = {h.lower() for h in HEX.findall(reference)} | {UNVERIFIED_HEX}
    for package in ("simulator/diagnostics", "simulator/policy"):
        for path in sorted((REPO / package).rglob("*.py")):
            for found in HEX.findall(path.read_text(encoding="utf-8")):
                assert found.lower() in known, f"{path.name}: {found}"


def test_hresults_and_alert_map_come_from_the_reference(reference: str) -> None:
    for symbol, value in HRESULTS.items():
        assert f"`{value}` | `{symbol}`" in reference
    assert hresult("SEC_E_WRONG_PRINCIPAL") == "0x80090322(SEC_E_WRONG_PRINCIPAL)"
    assert set(TLS_ALERT_HRESULTS.values()) <= set(HRESULTS)
    assert TLS_ALERT_HRESULTS["unknown_ca"] == "SEC_E_UNTRUSTED_ROOT"


def test_lookup_result_by_symbol_or_hex() -> None:
    cert = RESULT_CODES["SIPPROXY_E_ROUTING_MSG_CERT_MISMATCH"]
    assert lookup_result("SIPPROXY_E_ROUTING_MSG_CERT_MISMATCH") is cert
    assert lookup_result("0xC3E93D67") is cert
    assert lookup_result(UNVERIFIED_HEX) is None  # shared by every marker
    assert lookup_result("0x12345678") is None


def test_synthetic_hex_is_reserved_for_markers() -> None:
    base = RESULT_CODES["EMU_UNVERIFIED_NO_SRV"]
    with pytest.raises(ValueError, match="hex_known=False"):
        ResultCode(
            hex=UNVERIFIED_HEX,
            symbol="SIPPROXY_E_MADE_UP",
            text="t",
            severity="warning",
            fidelity="inferred",
            meaning=base.meaning,
            causes=base.causes,
            fix=base.fix,
            source="x",
        )
    with pytest.raises(ValueError, match="without its value is not verbatim"):
        ResultCode(
            hex=UNVERIFIED_HEX,
            symbol="SIPPROXY_E_SEEN_WITHOUT_VALUE",
            text="t",
            severity="warning",
            fidelity="verbatim",
            meaning=base.meaning,
            causes=base.causes,
            fix=base.fix,
            source="x",
            hex_known=False,
        )
    with pytest.raises(ValueError, match="not verbatim"):
        ResultCode(
            hex="0xc3e93d6f",
            symbol="EMU_UNVERIFIED_X",
            text="t",
            severity="warning",
            fidelity="inferred",
            meaning=base.meaning,
            causes=base.causes,
            fix=base.fix,
            source="x",
        )


def test_weakest_fidelity() -> None:
    assert weakest("verbatim", "verbatim") == "verbatim"
    assert weakest("verbatim", "inferred") == "inferred"
    assert weakest("unverified", "inferred", "verbatim") == "unverified"
