"""Interactive mode's conversation with the author, through a small protocol the caller implements.

The library never touches a terminal: the CLI passes an ``Interaction`` that streams and shows drafts
on stderr, reads answers from stdin and opens ``$EDITOR``; tests pass a scripted one. Answers are
validated here, and a bad answer is explained and asked again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol

from b2p.errors import B2PError, ModelError
from b2p.trace import Candidate

NO_ANSWER = ("no answer: standard input ended (interactive mode reads each answer from it); run it in a terminal "
             "or pipe in the answers, or use --mode sequential")


class Interaction(Protocol):
    """The author's side of interactive mode; the CLI implements it on the terminal, tests with a script."""

    def stream(self, piece: str) -> None: ...  # a draft as it is written
    def show(self, text: str) -> None: ...  # a finished draft, or a message
    def ask(self, question: str) -> str | None: ...  # one answer line; None at end of input (an error: nobody answers)
    def edit(self, text: str) -> str: ...  # the text after the author edited it


@dataclass
class Choice:
    action: Literal["accept", "regenerate", "edit", "quit"]
    temperature: float | None = None
    instruction: str | None = None


QUESTION = "[a]ccept, [r]egenerate [TEMPERATURE] [INSTRUCTION], [e]dit, [q]uit? "


def parse_choice(answer: str) -> Choice | str:
    """An answer to QUESTION as a Choice, or the message to show before asking again."""
    words = answer.strip().split(maxsplit=1)
    if not words:
        return "please answer a, r, e or q"
    verb, rest = words[0].lower(), (words[1].strip() if len(words) > 1 else "")
    if verb in ("a", "accept", "q", "quit", "e", "edit"):
        if rest:
            return f"'{verb}' takes nothing after it"
        return Choice({"a": "accept", "q": "quit", "e": "edit"}.get(verb, verb))  # type: ignore[arg-type]
    if verb not in ("r", "regenerate"):
        return f"'{words[0]}' is not an answer: use a, r, e or q (r may take a temperature 0–2 and an instruction)"
    temp_word, _, instruction = rest.partition(" ")
    try:
        temperature = float(temp_word)
    except ValueError:
        return Choice("regenerate", None, rest or None)
    if not 0.0 <= temperature <= 2.0:
        return f"temperature {temp_word} is out of range: use 0 to 2"
    return Choice("regenerate", temperature, instruction.strip() or None)


@dataclass
class Reply:
    """How the conversation about one beat ended."""

    chosen: Candidate
    text: str
    edited: bool
    quit: bool


def ask_author(io: Interaction, cands: list[Candidate], make: Callable[..., Candidate], temperature: float) -> Reply:
    """Show the chosen draft; accept, re-roll (``make(k, temperature, instruction)``), edit or quit.

    Every re-roll is appended to ``cands`` and becomes the chosen one; ``temperature`` is the default
    for a re-roll that names none. The end of input is not an answer: ``B2PError`` (the beats already
    accepted are saved; the run can be resumed).
    """
    current = next(c for c in cands if c.chosen)
    text, edited = current.text, False
    while True:
        io.show(text)
        answer = io.ask(QUESTION)
        if answer is None:
            raise B2PError(NO_ANSWER)
        choice = parse_choice(answer)
        if isinstance(choice, str):
            io.show(choice)
        elif choice.action in ("accept", "quit"):
            return Reply(current, text, edited, quit=choice.action == "quit")
        elif choice.action == "edit":
            new = io.edit(text).strip()
            if new:
                edited, text = edited or new != text, new
            else:
                io.show("the edited text is empty; keeping the draft")
        else:
            try:
                draft = make(len(cands), temperature if choice.temperature is None else choice.temperature, choice.instruction)
            except ModelError as err:  # the draft in hand is still good: keep it and ask again
                io.show(f"could not regenerate: {err}; keeping the draft")
                continue
            current.chosen, draft.chosen = False, True
            current = draft
            cands.append(current)
            text, edited = current.text, False
