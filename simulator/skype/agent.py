"""Who the emulated Skype user says it is: the headers of a client, not of a server.

Theory (docs/reference/skype-user.md §1). A user agent names itself with
``User-Agent`` on its requests *and* its responses; ``Server: RTC/6.0`` belongs
to the Edge's own answers (its 504s). The strings are those of a real Skype for
Business 2015 client's 200 OK (V); that fedsim's user is that exact build is
fedsim's choice (inferred). A user that does not exist is a bare 404 across
federation: the pool's 4005 diagnostics do not cross it (inferred).
"""

from __future__ import annotations

from collections.abc import Collection

__all__ = [
    "ALLOW_CALL",
    "ALLOW_IM",
    "SUPPORTED",
    "UNKNOWN_USER",
    "USER_AGENT",
    "user_exists",
    "user_headers",
]

#: The SfB 2015 client's User-Agent (V, reference 1.1).
USER_AGENT = "UCCAPI/16.0.4417.1000 OC/16.0.4417.1000 (Skype for Business)"
#: The client's Allow on an IM session 200 (V, reference 1.3).
ALLOW_IM = "INVITE, BYE, ACK, CANCEL, INFO, MESSAGE, UPDATE, REFER, NOTIFY, BENOTIFY"
#: The client's Allow on an audio call 200 (V, Lync 2013, reference 1.3).
ALLOW_CALL = "INVITE, BYE, ACK, CANCEL, INFO, UPDATE, REFER, NOTIFY, BENOTIFY, OPTIONS"
#: The client's Supported lines on a 200, one token each, in its order (V, reference 1.3).
SUPPORTED: tuple[str, ...] = (
    "ms-sender",
    "histinfo",
    "ms-safe-transfer",
    "ms-dialog-route-set-update",
    "ms-conf-invite",
)
#: The final response for a user that does not exist (reference 1.5, inferred).
UNKNOWN_USER = (404, "Not Found")


def user_headers(*, im: bool = False) -> tuple[tuple[str, str], ...]:
    """The header lines the user adds to its 180/200 to an INVITE (reference 1.3).

    Args:
        im: the INVITE opens an IM session (the client's Allow then lists MESSAGE).
    """
    return (
        ("User-Agent", USER_AGENT),
        *(("Supported", token) for token in SUPPORTED),
        ("Allow", ALLOW_IM if im else ALLOW_CALL),
    )


def user_exists(user: str, known: Collection[str] | None) -> bool:
    """Whether the user part of a Request-URI names an existing user.

    Args:
        user: the user part (``stejanss``).
        known: the lab's ``[edge] users`` names, or None for "any user exists"
            (the tour's default).
    """
    if known is None:
        return True
    wanted = user.strip().lower()
    return any(name.strip().lower() == wanted for name in known)
