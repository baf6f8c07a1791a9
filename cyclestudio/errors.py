"""The one exception type for mistakes a user can make (bad input, bad options)."""

from __future__ import annotations


class UserError(Exception):
    """Something the user can fix: a message naming the file or option, and a hint."""

    def __init__(self, message: str, hint: str = "", kind: str = "user",
                 **details: object) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.kind = kind  # the `error` event's kind (docs/events.md)
        self.details = details  # more fields for the `error` event, e.g. a suggestion

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message
