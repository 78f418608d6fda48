"""Text from writers, lorebooks and models, made safe to show: control characters become visible.

Whatever b2p shows — on a terminal, in a table, in an HTML report — is data, never instructions to
the thing showing it. An escape sequence in a bible entry must not retitle the terminal, and a
carriage return in a model's reply must not hide the line before it. ``visible`` keeps every
printable character as written (any script, any emoji) and turns control characters into the
escape that names them (ESC → ``\\x1b``), legible in any font and on any terminal.
"""

from __future__ import annotations

import re

# C0 controls except tab and newline, DEL, C1 controls, and the bidi overrides/isolates that can
# reorder what a reader sees (CVE-2021-42574 "Trojan Source").
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f\x80-\x9f\u202a-\u202e\u2066-\u2069]")


def _picture(m: re.Match[str]) -> str:
    code = ord(m.group())
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def visible(text: str, keep_newlines: bool = True) -> str:
    """``text`` with every control character shown as a visible stand-in (newlines kept unless
    ``keep_newlines`` is false, then shown as ``\\n``)."""
    out = _CONTROL.sub(_picture, text)
    return out if keep_newlines else out.replace("\n", "\\n")


# Whole terminal escape sequences: OSC (to BEL or ST), CSI, and two-character ESC sequences.
_ESCAPE = re.compile(r"\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b\[[0-?]*[ -/]*[@-~]|\x1b[@-Z\\-_]|\x9b[0-?]*[ -/]*[@-~]")


def strip_controls(text: str) -> str:
    """``text`` without terminal escape sequences and control characters (tabs and newlines kept):
    for model output that b2p saves as prose, where an escape sequence is never part of the story."""
    return _CONTROL.sub("", _ESCAPE.sub("", text))
