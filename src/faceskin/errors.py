"""Errors that are the user's to fix, as opposed to bugs in faceskin.

The CLI catches :class:`FaceskinError` and prints ``error: <message>`` with exit
status 2; anything else is a bug and keeps its traceback. Drawing that line in
one place is what lets the rest of the code raise freely without deciding how a
message reaches the user, and keeps user mistakes from ever showing a traceback.
"""

from __future__ import annotations


class FaceskinError(Exception):
    """A problem the user can fix; ``str(err)`` is one line meant for them.

    The message should name the file or option concerned and say what is wrong
    in plain words, because it is all the user will see.
    """

    def __init__(self, message: str) -> None:
        # Collapse newlines so the CLI's promise of a one-line error holds even
        # when a message embeds text from a library.
        one_line = " ".join(str(message).split())
        super().__init__(one_line)
        self.message = one_line

    def __str__(self) -> str:
        return self.message


class InputError(FaceskinError):
    """Bad user input: a missing, unreadable, corrupt or unsupported file or folder."""


class OutputError(FaceskinError):
    """An output that cannot or must not be written (unwritable, or would overwrite the input)."""
