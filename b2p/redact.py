"""Keeping a secret (an API key) out of everything b2p shows or saves.

A careless or hostile server may echo the key back: whole, upper-cased, without its ``sk-`` prefix, or
cut into the prose it writes. ``Redactor`` replaces every run of at least ``MIN_RUN`` characters that
also occurs in a secret, ignoring ASCII case, with ``***``; ``Redactor.stream()`` does the same to text
that arrives in pieces, holding back only a tail that could still grow into such a run.
"""

from __future__ import annotations

from collections.abc import Iterable

MIN_RUN = 8  # a shared run this long is no accident: "password" is the longest English word a key could hold by chance
MASK = "***"
_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")  # keeps offsets, unlike str.lower


def _low(text: str) -> str:
    return text.translate(_LOWER)


class Redactor:
    """``redactor(text)``: ``text`` with every long run of a secret masked. Secrets shorter than
    ``MIN_RUN`` are masked where they occur whole."""

    def __init__(self, secrets: Iterable[str]) -> None:
        self.secrets = [_low(s) for s in secrets if s]
        self._grams = {s[i : i + MIN_RUN] for s in self.secrets for i in range(len(s) - MIN_RUN + 1)}
        self._short = [s for s in self.secrets if len(s) < MIN_RUN]

    def __bool__(self) -> bool:
        return bool(self.secrets)

    def _marks(self, text: str) -> bytearray:
        """1 for every character inside a run that a secret shares."""
        low = _low(text)
        marks = bytearray(len(text))
        if self._grams:
            for i in range(len(text) - MIN_RUN + 1):
                if low[i : i + MIN_RUN] in self._grams:
                    marks[i : i + MIN_RUN] = b"\x01" * MIN_RUN
        for s in self._short:
            start = low.find(s)
            while start >= 0:
                marks[start : start + len(s)] = b"\x01" * len(s)
                start = low.find(s, start + 1)
        return marks

    def _apply(self, text: str, marks: bytearray | memoryview) -> str:
        out, i = [], 0
        while i < len(text):
            j = i
            while j < len(text) and marks[j] == marks[i]:
                j += 1
            out.append(MASK if marks[i] else text[i:j])
            i = j
        return "".join(out)

    def __call__(self, text: str) -> str:
        if not self.secrets or not text:
            return text
        return self._apply(text, self._marks(text))

    def tail(self, text: str) -> int:
        """Length of the longest end of ``text`` that is part of a secret: it may yet grow into a run."""
        low = _low(text[-max((len(s) for s in self.secrets), default=0) :])
        for n in range(len(low), 0, -1):
            if any(low[-n:] in s for s in self.secrets):
                return n
        return 0

    def stream(self) -> RedactedStream:
        return RedactedStream(self)


class RedactedStream:
    """Text arriving in pieces, redacted: ``feed`` returns what can be shown now, ``flush`` the rest.

    A piece's end that could be the start of a secret's run (``HOLD`` characters or more) is held
    back until the next piece shows whether it is; the last characters already shown are kept as
    context, so a run that started in them is still masked from there on."""

    HOLD = 4  # shorter ends are shown at once: at most HOLD - 1 characters of a run leak at a piece's edge

    def __init__(self, redactor: Redactor) -> None:
        self.redactor = redactor
        self.pending = ""
        self.context = ""  # the last characters shown, unredacted
        self.masked = False  # the last thing shown was a mask (a run cut by pieces shows one mask)

    def _show(self, cut: int) -> str:
        marks = self.redactor._marks(self.context + self.pending)
        off = len(self.context)
        shown = self.redactor._apply(self.pending[:cut], memoryview(marks)[off : off + cut])
        if self.masked and shown.startswith(MASK):
            shown = shown[len(MASK) :]
        if cut:
            self.masked = bool(marks[off + cut - 1])
        self.context = (self.context + self.pending[:cut])[-max((len(x) for x in self.redactor.secrets), default=0) :]
        self.pending = self.pending[cut:]
        return shown

    def feed(self, piece: str) -> str:
        if not self.redactor:
            return piece
        self.pending += piece
        run = self.redactor.tail(self.context + self.pending)  # a run may have begun in what was shown
        keep = min(run, len(self.pending)) if run >= self.HOLD else 0
        cut = len(self.pending) - keep
        return self._show(cut) if cut > 0 else ""

    def flush(self) -> str:
        return self._show(len(self.pending)) if self.pending else ""
