"""fedsim: an emulated Skype for Business / Lync Access Edge for SIP federation labs."""

from __future__ import annotations

__version__ = "0.1.0"
