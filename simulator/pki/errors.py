"""The errors of the lab PKI: one type, naming the certificate or file and the fix."""

from __future__ import annotations

import os

from simulator.errors import FedsimError


class PkiError(FedsimError):
    """A certificate, key or spec is wrong: names the certificate or file and a fix.

    Attributes:
        what: what is wrong.
        name: the lab name of the certificate concerned, if any.
        path: the file concerned, if any.
        fix: how to fix it, if known.
    """

    def __init__(
        self,
        what: str,
        *,
        name: str | None = None,
        path: str | os.PathLike[str] | None = None,
        fix: str | None = None,
    ) -> None:
        self.what = what
        self.name = name
        self.path = None if path is None else os.fspath(path)
        self.fix = fix
        text = ""
        if self.path is not None:
            text += f"{self.path}: "
        if name is not None:
            text += f"certificate '{name}': "
        text += what
        if fix:
            text += f" ({fix})"
        super().__init__(text)
