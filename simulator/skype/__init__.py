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

Sources and confidence tags: docs/reference/skype-user.md.
"""

from __future__ import annotations
