"""What the emulated Skype user answers, and the Edge's records that carry no SIP answer.

The federation rules decide whether a request reaches a Skype user; once it
does, the user's own answer is also a decision, the same in both directions:

* a domain not homed behind this Edge has no user: ``404``;
* a user the lab does not list, when the lab lists who exists
  (``[edge] users_exist = "listed"``): ``404``;
* the lab may make a user busy (``[edge] users = { bob = 486 }``): INVITE and
  MESSAGE get that status;
* OPTIONS is answered ``200`` by any existing user (a capability query, busy or
  not); a SUBSCRIBE goes to the presence machine (``200``, or its own refusal:
  :func:`simulator.skype.presence.step`), busy or not;
* a method the user does not implement gets ``501`` with ``Allow``.

All of it is RFC 3261's (§8.2.1, §11, §21): Microsoft documents none of it, so
every answer here is "inferred".
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from simulator.diagnostics.catalogue import RESULT_CODES
from simulator.diagnostics.format import EdgeLogRecord
from simulator.policy.facts import EdgeSettings, normalise_domain

#: Methods the emulated Skype user agent implements (Allow header of 200/405/501).
ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, MESSAGE, SUBSCRIBE, NOTIFY, INFO, UPDATE, PRACK"

#: Out-of-dialog methods the user answers (others get 501).
USER_METHODS = frozenset({"INVITE", "MESSAGE", "OPTIONS", "SUBSCRIBE"})


def user_answer(
    method: str,
    domain: str,
    user: str | None,
    settings: EdgeSettings,
    users: Mapping[str, int],
    *,
    known: Collection[str] | None = None,
) -> int:
    """The final status a Skype user of ``domain`` answers an out-of-dialog ``method`` with.

    Args:
        method: the request's method.
        domain: the called user's domain (the host of the called URI).
        user: the called user part, if any.
        settings: the Edge's domains.
        users: the lab's users with a fixed answer (``{"bob": 486}``); anyone else
            answers 200.
        known: the users that exist (lower case), or None when any user does.
    """
    if normalise_domain(domain) not in settings.domains:
        return 404  # not a domain homed behind this Edge
    if known is not None and (user or "").lower() not in known:
        return 404  # no such user (reference: skype-user.md 1.5)
    if method not in USER_METHODS:
        return 501
    if method in ("OPTIONS", "SUBSCRIBE"):
        return 200
    return users.get(user or "", users.get((user or "").lower(), 200))


def handshake_refused(reason: str) -> EdgeLogRecord:
    """The Edge record of a refused TLS handshake.

    Windows' Schannel refuses the peer before any SIP arrives and no public trace
    shows what the Edge logs then, so the record is the synthetic
    ``EMU_UNVERIFIED_TLS_HANDSHAKE_FAILED`` with the reason, labelled "inferred".
    """
    return EdgeLogRecord(
        result=RESULT_CODES["EMU_UNVERIFIED_TLS_HANDSHAKE_FAILED"],
        data=(("reason", reason),),
        fidelity="inferred",
    )
