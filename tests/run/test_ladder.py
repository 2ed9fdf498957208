"""Ladder pictures: well-formed SVG from what the runner observed, rendered by Chromium once."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import xml.etree.ElementTree as ET
import zlib
from pathlib import Path

import pytest

from simulator.run import CallTrace, load_lab_files, run_lab
from simulator.run.ladder import ladder_svg

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
SVG = "{http://www.w3.org/2000/svg}"


def texts(svg: str) -> list[str]:
    root = ET.fromstring(svg)
    return ["".join(t.itertext()) for t in root.iter(f"{SVG}text")]


async def traces(tmp_path: Path, relative: str) -> list[CallTrace]:
    (lab_file,) = load_lab_files([SCENARIOS / relative])
    report = await run_lab(lab_file, work_dir=tmp_path / "lab")
    assert report.error is None
    return [c.trace for c in report.calls]


async def test_inbound_ladder_shows_tls_srv_decision_and_the_504(tmp_path: Path) -> None:
    first = (await traces(tmp_path, "seeds/01-acano-srv-points-to-parent-domain.toml"))[0]
    svg = ladder_svg(first)
    words = texts(svg)
    assert "Expressway-E expe" in words
    assert "Edge sip.skype.lab" in words
    assert "DNS" in words
    assert "TLS: Edge presents sip.skype.lab" in words
    assert "TLS: client certificate vcse.steven.lab" in words
    assert "INVITE sip:stejanss@skype.lab SIP/2.0" in words
    assert "SRV? _sipfederationtls._tcp.acano.steven.lab" in words
    assert "OK: vcse.steven.lab:5061" in words
    assert "rule: srv-not-in-domain -> 504" in words
    assert "Result-Code: 0xc3e93d6f SIPPROXY_E_EPROUTING_MSG_ALLOWED_DOMAIN_NO_SRV_MATCH" in words
    assert "SIP/2.0 504 Server time-out" in words


async def test_outbound_ladder_shows_the_partner_lane_and_forwarding(tmp_path: Path) -> None:
    ok = (await traces(tmp_path, "outbound/01-good-partner.toml"))[0]
    words = texts(ladder_svg(ok))
    assert "Skype client" in words
    assert "Expressway-E expe" in words
    assert any(w.startswith("TLS to vcse.steven.lab:") for w in words)
    assert "TLS: server certificate vcse.steven.lab" in words
    assert words.count("INVITE sip:2000@steven.lab SIP/2.0") == 2  # client->Edge, Edge->partner
    assert "SIP/2.0 200 OK" in words


async def test_refused_handshake_ladder_has_no_sip(tmp_path: Path) -> None:
    refused = (await traces(tmp_path, "pki/04-untrusted-private-ca.toml"))[0]
    words = texts(ladder_svg(refused))
    assert any(w.startswith("handshake refused") for w in words)
    assert "rule: tls-handshake-failed" in words
    assert not any(w.startswith("INVITE ") for w in words)


def test_ladder_escapes_markup_and_needs_no_event() -> None:
    trace = CallTrace(
        scenario="x<&>",
        number=1,
        direction="outbound",
        method="INVITE",
        from_uri="sip:a@skype.lab",
        to_uri='sip:"b"@x.lab',
        caller="Skype client",
        edge_fqdn="sip.skype.lab",
        request_line="INVITE sip:b@x.lab SIP/2.0",
        error="no final response within 10 s",
    )
    svg = ladder_svg(trace)
    ET.fromstring(svg)
    assert "rule: (no event)" in texts(svg)
    assert "<script" not in svg
    assert "href=" not in svg.replace("url(#", "")


def _png_pixels_vary(png: bytes) -> bool:
    """Decode the PNG's image data (zlib, stdlib) and tell whether it is more than one colour."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, data = 8, b""
    while pos < len(png):
        length = int.from_bytes(png[pos : pos + 4], "big")
        kind = png[pos + 4 : pos + 8]
        if kind == b"IDAT":
            data += png[pos + 8 : pos + 8 + length]
        pos += 12 + length
    raw = zlib.decompress(data)
    width = int.from_bytes(png[16:20], "big")
    row = len(raw) // int.from_bytes(png[20:24], "big")
    # Drop each scanline's filter byte; the rest differs only if the pixels differ.
    pixels = b"".join(raw[i + 1 : i + row] for i in range(0, len(raw), row))
    assert row > width
    return len(set(pixels)) > 2


def _screenshot(chromium: str, page: Path, png: Path, profile: Path) -> bytes:
    proc = subprocess.Popen(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={profile}",
            f"--screenshot={png}",
            "--window-size=1200,800",
            page.as_uri(),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        proc.wait(timeout=90)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert png.is_file(), f"chromium wrote no screenshot of {page}"
    return png.read_bytes()


@pytest.mark.interop
async def test_ladder_renders_in_headless_chromium(tmp_path: Path) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.fail(
            "chromium is not installed: make test (.ci/ensure-packages) "
            "installs it (the ladder render test needs it)"
        )
    trace = (await traces(tmp_path, "seeds/02-acano-cert-lacks-srv-target.toml"))[1]
    page = tmp_path / "ladder.svg"
    page.write_text(ladder_svg(trace), encoding="utf-8")
    blank = tmp_path / "blank.html"
    blank.write_text("<!DOCTYPE html><html><body style='background:#fff'></body></html>")
    drawn = _screenshot(chromium, page, tmp_path / "ladder.png", tmp_path / "profile-1")
    empty = _screenshot(chromium, blank, tmp_path / "blank.png", tmp_path / "profile-2")
    assert not _png_pixels_vary(empty)
    assert _png_pixels_vary(drawn)
    assert len(drawn) > 4 * len(empty)
