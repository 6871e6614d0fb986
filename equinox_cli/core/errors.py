"""Errors. A `UserInputError` is a mistake the user can fix: the CLI prints it on one line, exit 2."""

from __future__ import annotations


class EquinoxError(Exception):
    """Base class of every error Equinox raises on purpose."""


class UserInputError(EquinoxError):
    """Bad input: a malformed trace, an unknown name, a bad parameter value.

    The message names the file, row and field (or lists the valid choices).
    """


def unknown_name(kind: str, name: str, valid: list[str] | tuple[str, ...]) -> UserInputError:
    """The standard error for an unknown registry name, listing the valid choices."""
    return UserInputError(f"unknown {kind} {name!r}; valid: {', '.join(sorted(valid))}")
