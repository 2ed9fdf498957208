"""The user agent's own headers, and who exists."""

from __future__ import annotations

import pytest

from simulator.skype.agent import (
    ALLOW_CALL,
    ALLOW_IM,
    UNKNOWN_USER,
    USER_AGENT,
    user_exists,
    user_headers,
)


def test_user_agent_is_the_sfb_2015_client_string() -> None:
    """V: the User-Agent of a real SfB 2015 client's 200 OK (reference 1.1)."""
    assert USER_AGENT == "UCCAPI/16.0.4417.1000 OC/16.0.4417.1000 (Skype for Business)"


@pytest.mark.parametrize(("im", "allow"), [(False, ALLOW_CALL), (True, ALLOW_IM)])
def test_user_headers_are_a_clients_not_a_servers(im: bool, allow: str) -> None:
    """User-Agent, the client's Supported tokens and Allow; never Server."""
    headers = user_headers(im=im)
    names = [name for name, _ in headers]
    assert headers[0] == ("User-Agent", USER_AGENT)
    assert "Server" not in names
    assert ("Allow", allow) in headers
    assert ("MESSAGE" in allow) == im
    assert [v for n, v in headers if n == "Supported"] == [
        "ms-sender",
        "histinfo",
        "ms-safe-transfer",
        "ms-dialog-route-set-update",
        "ms-conf-invite",
    ]


EXISTS = [
    ("stejanss", None, True),
    ("anyone", None, True),
    ("stejanss", ["stejanss", "alice"], True),
    ("Alice", ["alice"], True),
    ("bob", ["stejanss", "alice"], False),
    ("bob", [], False),
]


@pytest.mark.parametrize(("user", "known", "exists"), EXISTS)
def test_user_exists(user: str, known: list[str] | None, exists: bool) -> None:
    """No list: every user exists (the tour); a list: only its names, case-insensitive."""
    assert user_exists(user, known) is exists


def test_unknown_user_is_404() -> None:
    """A user that does not exist is 404 Not Found (reference 1.5)."""
    assert UNKNOWN_USER == (404, "Not Found")
