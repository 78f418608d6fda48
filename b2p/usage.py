"""A command-line usage error (unknown flag, missing argument, bad value) as the one line b2p prints.

Click's own rendering (and Typer's boxed panel) spends several lines on a usage summary; b2p's rule
is one line that names the command and the fix:

    b2p lore: no such option '--budjet' (did you mean '--budget'?)
"""

from __future__ import annotations

import re
import sys
from typing import Any

import typer

from b2p.errors import closest

# Typer >= 0.24 vendors Click as typer._click; older ones use click. Either way this is the module
# whose exception classes the parser raises.
exceptions = sys.modules[typer.BadParameter.__module__]
_NO_SUCH_COMMAND = re.compile(r"No such command '(?P<name>.*?)'\.")


def _sentence(message: str) -> str:
    """Click's capitalised sentence as a clause: one line, lower-case start, no full stop."""
    text = " ".join(message.split()).rstrip(".")
    if len(text) > 1 and text[0].isupper() and not text[1].isupper():
        text = text[0].lower() + text[1:]
    return text


def _option_names(ctx: Any) -> list[str]:
    params = [p for p in ctx.command.params if p.param_type_name == "option"]
    return [n for p in params for n in (*p.opts, *p.secondary_opts)] + list(ctx.help_option_names)


def usage_line(err: Any, where: str | None = None) -> str:
    """``'<command path>: <what is wrong>'`` for any Click usage error (``exceptions.UsageError``).

    ``where`` names the command when the error carries no context (Click raises "Option '--x'
    requires an argument" without one).
    """
    ctx = err.ctx
    where = ctx.command_path if ctx is not None else (where or "b2p")
    if isinstance(err, exceptions.NoSuchOption):
        line = f"no such option '{err.option_name}'"
        names = _option_names(ctx) if ctx is not None else list(err.possibilities or [])
        bare = {n.lstrip("-"): n for n in names}  # the shared dashes would make '--colour' look like '--chroma-url'
        guess = bare.get(closest(err.option_name.lstrip("-"), bare) or "")
        return f"{where}: {line}" + (f" (did you mean '{guess}'?)" if guess else f"; see '{where} --help'")
    if isinstance(err, exceptions.MissingParameter):
        return f"{where}: {_sentence(err.format_message())}; see '{where} --help'"
    found = _NO_SUCH_COMMAND.match(err.message)
    if found:
        commands = list(getattr(ctx.command, "commands", None) or {}) if ctx is not None else []
        guess = closest(found["name"], commands)
        hint = f" (did you mean '{guess}'?)" if guess else (f"; commands: {', '.join(commands)}" if commands else "")
        return f"{where}: no such command '{found['name']}'{hint}"
    return f"{where}: {_sentence(err.format_message())}"
