"""Shared fixtures: where ../shared lives, and which real peers are on PATH."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from hypothesis import settings

# No timing assertions in tests: hypothesis' per-example deadline is one, so it is
# off. Under CI (CI=true) examples are derandomized: the same inputs every run, so
# a red CI is reproducible; a local run still explores new inputs every time.
settings.register_profile("fedsim", deadline=None)
settings.register_profile("ci", deadline=None, derandomize=True)
settings.load_profile("ci" if os.environ.get("CI") else "fedsim")

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The project's ../shared folder (seeds, reference, RFC 4475 corpus, interop configs)."""
    if not SHARED.is_dir():
        pytest.fail(f"{SHARED} is missing: clone the project with ../shared beside it")
    return SHARED


def require_tool(name: str) -> str:
    """Return the path of a real peer tool, failing (not skipping) when CI lacks it."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(
            f"{name} is not on PATH: make test (.ci/ensure-packages) installs the real peers"
        )
    return path
