"""The user-facing error family.

Every error a user can cause (a bad lab file, a bad PEM, a bad argument) is a
:class:`FedsimError`. ``fedsim`` prints ``fedsim: error: <str(exc)>`` on one
line and exits 2; anything else escaping a command is a bug in fedsim.
"""

from __future__ import annotations


class FedsimError(Exception):
    """A problem with the user's input: printed as one line, exit status 2."""


class LabError(FedsimError):
    """A lab file (or a file it names) is wrong.

    The message reads ``path:line: [section] key 'name': what is wrong (fix)``
    so an editor can jump to it; ``details`` follow on indented lines (what the
    emulated product itself prints for the fault, e.g. an event's text).
    """

    def __init__(
        self,
        what: str,
        *,
        path: str,
        line: int | None = None,
        key: str | None = None,
        fix: str | None = None,
        details: tuple[str, ...] = (),
    ) -> None:
        self.what = what
        self.path = path
        self.line = line
        self.key = key
        self.fix = fix
        self.details = details
        where = f"{path}:{line}" if line is not None else path
        text = f"{where}: "
        if key:
            text += f"{key}: "
        text += what
        if fix:
            text += f" ({fix})"
        # Lines a product prints for the same fault (event 14517's sentences), indented
        # under the one error line.
        text += "".join(f"\n  {line}" for line in details)
        super().__init__(text)

    def with_details(self, *lines: str) -> LabError:
        """The same error with ``lines`` printed under it."""
        return LabError(
            self.what,
            path=self.path,
            line=self.line,
            key=self.key,
            fix=self.fix,
            details=(*self.details, *lines),
        )
