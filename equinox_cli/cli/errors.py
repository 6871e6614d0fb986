"""Click's exception classes under every Typer this project allows (pyproject pins the range).

Typer up to 0.2x runs on the `click` package; newer Typer vendors its own copy (`typer._click`),
whose exceptions are other classes with the same names. `main()` must catch both, or a usage error
(`--rate fast`, an unknown option or command) escapes as a traceback.
"""

from __future__ import annotations

import importlib
from types import ModuleType


def _modules() -> list[ModuleType]:
    found = []
    for name in ("typer._click.exceptions", "click.exceptions"):
        try:
            found.append(importlib.import_module(name))
        except ImportError:
            continue
    return found


def _classes(name: str) -> tuple[type[BaseException], ...]:
    return tuple(getattr(module, name) for module in _modules() if hasattr(module, name))


USAGE_ERRORS = _classes("ClickException")  # UsageError, BadParameter, NoSuchOption, FileError ...
INTERRUPTS: tuple[type[BaseException], ...] = (KeyboardInterrupt, *_classes("Abort"))
EXITS = _classes("Exit")


def exit_code(exc: BaseException) -> int:
    code = getattr(exc, "exit_code", 2)
    return code if isinstance(code, int) else 2


def usage_message(exc: BaseException) -> str:
    """Click's message, naming the option and the command whose --help lists the valid ones."""
    format_message = getattr(exc, "format_message", None)
    message = format_message() if callable(format_message) else str(exc)
    ctx = getattr(exc, "ctx", None)
    path = getattr(ctx, "command_path", None)
    if message.startswith("No such command") and hasattr(getattr(ctx, "command", None), "list_commands"):
        message = f"{message.rstrip('.')}; valid: {', '.join(sorted(ctx.command.list_commands(ctx)))}"  # type: ignore[union-attr]
    return f"{message} (see '{path} --help')" if path else message
