"""The emulated Skype for Business user behind the Edge (sans-I/O).

Pure code: requests in, messages out. The Edge's trio wiring carries the bytes.
"""

from __future__ import annotations
