"""The Skype for Business user behind the emulated Edge, as pure decisions.

The Edge's emulated user calls these; none of them touches a socket, a clock or
a global random generator (every random choice comes from a passed
``random.Random``, every time from a passed ``now``):

- :mod:`~simulator.skype.media`: answer an SDP offer per the user's media
  encryption policy (SRTP answer, plain answer, 488 with 52017 or 52063).
- :mod:`~simulator.skype.presence`: PIDF and enhanced-presence documents and the
  RFC 6665 subscription machine.
- :mod:`~simulator.skype.im`: MESSAGE answers, IM session SDP, the text of a body.
- :mod:`~simulator.skype.call`: 2xx retransmission and the staged endings after
  the 200 (no ACK, hang-up, media failure).
- :mod:`~simulator.skype.agent`: the client's own headers.
- :mod:`~simulator.skype.sdp`: the RFC 4566 reader underneath.
- :mod:`~simulator.skype.user`: the one emulated user both Edge ports reach,
  which puts the others together: requests and timers in, messages, events
  and timers out (:func:`~simulator.skype.user.answer_status` is what
  ``fedsim check`` predicts with).

Sources and confidence tags: docs/reference/skype-user.md.
"""

from __future__ import annotations

from simulator.skype.agent import UNKNOWN_USER, USER_AGENT, user_exists, user_headers
from simulator.skype.call import CallPlan, CallSettings, plan_call
from simulator.skype.im import embedded_first_message, receive_message
from simulator.skype.media import (
    MEDIA_ENCRYPTION_VALUES,
    MediaAnswer,
    MediaRefusal,
    MediaSettings,
    answer_offer,
    check_answer,
    make_offer,
)
from simulator.skype.presence import (
    AVAILABILITIES,
    PresenceSettings,
    PresenceStep,
    Presentity,
    SubscribeRequest,
    Subscription,
    availability,
    step,
)
from simulator.skype.sdp import SdpError, parse_sdp

__all__ = [
    "AVAILABILITIES",
    "MEDIA_ENCRYPTION_VALUES",
    "UNKNOWN_USER",
    "USER_AGENT",
    "CallPlan",
    "CallSettings",
    "MediaAnswer",
    "MediaRefusal",
    "MediaSettings",
    "PresenceSettings",
    "PresenceStep",
    "Presentity",
    "SdpError",
    "SubscribeRequest",
    "Subscription",
    "answer_offer",
    "availability",
    "check_answer",
    "embedded_first_message",
    "make_offer",
    "parse_sdp",
    "plan_call",
    "receive_message",
    "step",
    "user_exists",
    "user_headers",
]
