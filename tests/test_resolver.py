"""resolver = 'model': the chat model reads each beat with the bible's catalogue and says which entries
it involves (b2p/resolver.py). What the model says is checked: only catalogue names with words of the
beat count; a bad answer, a failing model or a small model's invention leaves the rules' choice.

The model is a scripted stand-in handed to the resolver, the real ``openai`` client against a scripted server on
loopback, and the embedded SmolLM2 behind ``python -m llama_cpp.server``.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from b2p.beats import parse_beat
from b2p.errors import ModelError
from b2p.llm import Completion, GenOptions, Message, OnText
from b2p.resolver import ModelResolver, parse_answer
from b2p.retrieval import Retriever
from b2p.settings import Settings
from b2p.store import Store
from tests.lore_bibles import ingested
from tests.plugins.servers import FaultServer
from tests.test_bad_inputs import b2p_command
from tests.test_kinship import BAKERS


class ScriptedLLM:
    """A chat model that answers each beat from a script: the first key found in the prompt's beat picks
    the answer. Not a registered backend (the registry is global to the test session): the tests hand
    it to the resolver directly."""

    asked: list[str] = []
    prompts: list[str] = []

    def __init__(self, answers: dict[str, str]) -> None:
        self.name, self.context_window, self.answers = "scripted", 8192, answers

    def complete(self, messages: list[Message], options: GenOptions, on_text: OnText | None = None) -> Completion:
        beat = messages[-1]["content"].split("The next beat:\n", 1)[1].split("\n", 1)[0]
        ScriptedLLM.asked.append(beat)
        ScriptedLLM.prompts.append(messages[-1]["content"])
        for key, answer in self.answers.items():
            if key in beat:
                if answer == "RAISE":
                    raise ModelError("the server went away")
                if answer.startswith("CUT:"):  # stopped at the token limit
                    return Completion(text=answer[4:], finish_reason="length")
                return Completion(text=answer)
        return Completion(text="none")

    def close(self) -> None:
        pass


@pytest.fixture(scope="module")
def bakers(tmp_path_factory: pytest.TempPathFactory, _isolated_env: None) -> Iterator[tuple[Settings, Store, Path]]:
    settings, root = ingested(tmp_path_factory, "bakers", BAKERS)
    with Store.open(settings) as st:
        yield settings, st, root


def ledger(bakers, beats: list[str], answers: dict[str, str], tmp_path: Path, explain: bool = True, carried=()):  # noqa: ANN001, ANN201
    settings, st, _ = bakers
    changed = settings.model_copy(update={"resolver": "model", "top_k": 0})
    made = ModelResolver(ScriptedLLM(answers), tmp_path / "cache", "scripted")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ModelResolver, "from_settings", classmethod(lambda cls, s, ask=True: made))
        return Retriever(changed, st, "bakers").ledger([parse_beat(b) for b in beats], explain=explain, carried=carried).beats


def picks(beat) -> dict[str, str]:  # noqa: ANN001
    return {p.name: p.reason for p in beat.lore if p.reason != "always"}


# -- reading the answer ------------------------------------------------------------------------------------


def test_an_answer_is_read_whatever_its_bullets_and_separators() -> None:
    names = {"greet achterberg": "g", "greet": "g", "pim achterberg": "p", "pim": "p", "the bakery": "b"}
    answer = "1. Greet Achterberg — her mother\n- **Pim**: the driver\n* The Bakery (where it happens)\nSomebody Else — him\n\n"
    found, unknown, said_none = parse_answer(answer, names)
    assert found == [("g", "her mother"), ("p", "the driver"), ("b", "where it happens")]
    assert unknown == ["Somebody Else — him"] and not said_none
    assert parse_answer("None.", names) == ([], [], True)
    # a name with a separator in it is read whole: the longest catalogue name that starts the line
    flood = {"the flood": "x", "the flood: 1953": "f"}
    assert parse_answer("The Flood: 1953 — the old flood", flood)[0] == [("f", "the old flood")]


# -- what the model chooses, and what is kept whatever it says ------------------------------------------------


def test_the_models_picks_come_in_with_the_words_it_gave(bakers, tmp_path: Path) -> None:  # noqa: ANN001
    beat = ledger(bakers, ["Saskia hears the latest gossip from the fishwife on the quay."],
                  {"gossip": "Saskia Achterberg — Saskia\nMrs. Anke Dekker — the fishwife on the quay"}, tmp_path)[0]
    assert picks(beat) == {"Saskia Achterberg": "named", "Mrs. Anke Dekker": "model"}
    assert next(p.match for p in beat.lore if p.name == "Mrs. Anke Dekker") == "the fishwife on the quay"
    assert beat.resolver is None


def test_the_writers_overrides_stand_whatever_the_model_says(bakers, tmp_path: Path) -> None:  # noqa: ANN001
    beat = ledger(bakers, ["Pim and Saskia argue in the van. -Lotte Maas +Bram Kuiper"],
                  {"argue": "Lotte Maas — in the van\nPim Achterberg — Pim\nSaskia Achterberg — Saskia"}, tmp_path)[0]
    got = picks(beat)
    assert got == {"Bram Kuiper": "writer", "Pim Achterberg": "named", "Saskia Achterberg": "named"}  # Lotte kept out


def test_a_name_the_beat_uses_in_another_sense_is_the_models_call(bakers, tmp_path: Path) -> None:  # noqa: ANN001
    """The matcher finds 'Kuiper' in a loaf's name; the model, reading the beat, leaves the notary out."""
    beat = ledger(bakers, ["Greet bakes a Kuiper loaf, named for the old harbour family."], {"loaf": "Greet Achterberg — Greet"}, tmp_path)[0]
    assert picks(beat) == {"Greet Achterberg": "named"}
    assert ("Bram Kuiper", "the model left it out") in [(d.name, d.reason) for d in beat.dropped]


def test_a_rule_pick_the_model_leaves_out_is_reported(bakers, tmp_path: Path) -> None:  # noqa: ANN001
    beat = ledger(bakers, ["Pim loads the van and phones his sister."], {"phones": "Pim Achterberg — Pim"}, tmp_path)[0]
    assert picks(beat) == {"Pim Achterberg": "named"}
    assert ("Saskia Achterberg", "the model left it out") in [(d.name, d.reason) for d in beat.dropped]


@pytest.mark.parametrize(("answer", "why"), [
    ("Willem Achterberg — the ovens\nGreet Achterberg — the bread\nLotte Maas — the ovens", "quoted nothing"),  # made up
    ("Bram Kuiper — the\nMrs. Anke Dekker — and", "quoted nothing"),  # a bare function word is no quote
    ("Greet Achterberg — the ovens of the van", "quoted nothing"),  # words of the beat, but not as it says them
    ("The weather — cold", "named no entry"),
    ("none", "the beat names entries"),
    ("\n".join(f"{n} — Pim" for n in ("Greet Achterberg", "Willem Achterberg", "Saskia Achterberg", "Lotte Maas", "Bram Kuiper",
                                      "Mrs. Anke Dekker", "Joost Veen", "Femke Veen", "Marijke Bos")), "listed 9"),
    ("RAISE", "could not be asked"),
    ("CUT:Pim Achterberg — Pim\nSaskia Ach", "cut off"),
])
def test_an_answer_that_cannot_be_used_leaves_the_rules_choice_and_says_why(bakers, tmp_path: Path, answer: str, why: str) -> None:  # noqa: ANN001
    beat = ledger(bakers, ["Pim loads the van and phones his sister."], {"phones": answer}, tmp_path)[0]
    assert picks(beat) == {"Pim Achterberg": "named", "Saskia Achterberg": "scene"}  # the rules' choice
    assert why in (beat.resolver or "") and "the rules chose" in beat.resolver  # type: ignore[operator]


def test_a_model_that_fails_is_not_asked_again_in_the_run(bakers, tmp_path: Path) -> None:  # noqa: ANN001
    ScriptedLLM.asked.clear()
    got = ledger(bakers, ["Pim loads the van.", "Saskia cycles to the hospital."], {"loads": "RAISE", "cycles": "Saskia Achterberg — Saskia"}, tmp_path)
    assert ScriptedLLM.asked == ["Pim loads the van."]
    assert "earlier in this run (the server went away)" in (got[1].resolver or "") and "Saskia Achterberg" in picks(got[1])


def test_a_chapters_first_beats_are_told_whom_the_last_chapter_ended_with(bakers, tmp_path: Path) -> None:  # noqa: ANN001
    """In a book the cast carried from the previous chapter is on stage: the model is told who they are."""
    ScriptedLLM.prompts.clear()
    got = ledger(bakers, ["She counts the loaves before dawn."], {"loaves": "Greet Achterberg — She"}, tmp_path,
                 carried=[["characters/greet"]])
    assert "(the previous chapter ended with Greet Achterberg on stage)" in ScriptedLLM.prompts[-1]
    assert picks(got[0]) == {"Greet Achterberg": "scene"}  # the rules found her too: their reason and path are kept


def test_an_answer_is_asked_once_for_the_same_prompt_and_model(bakers, tmp_path: Path) -> None:  # noqa: ANN001
    ScriptedLLM.asked.clear()
    answers = {"notary": "Bram Kuiper — the notary"}
    for _ in range(2):
        ledger(bakers, ["Saskia visits the notary."], answers, tmp_path)
    assert ScriptedLLM.asked == ["Saskia visits the notary."]


# -- through the command: the real openai client, and the real embedded model ------------------------------------


def run(root: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([*b2p_command(), "lore", *args], cwd=cwd, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "COLUMNS": "200", "B2P_CACHE_DIR": str(cwd / "cache")}, stdin=subprocess.DEVNULL)
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr
    return proc


def test_lore_resolver_model_through_an_openai_server(bakers, tmp_path: Path, fault_server: FaultServer) -> None:  # noqa: ANN001
    _, _, root = bakers
    fault_server.text = "Mrs. Anke Dekker — the fishwife\nSaskia Achterberg — Saskia"
    args = ["--beat", "Saskia buys herring from the fishwife.", "--bible", str(root), "--store", str(tmp_path / "store"), "--resolver", "model", "--top-k", "0",
            "--llm", "openai", "--model", "gpt-4o-mini", "--base-url", fault_server.url, "--json"]
    proc = run(root, *args, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    got = {p["name"]: (p["reason"], p["match"]) for p in json.loads(proc.stdout)["beats"][0]["lore"] if p["reason"] != "always"}
    assert got == {"Saskia Achterberg": ("named", "Saskia"), "Mrs. Anke Dekker": ("model", "the fishwife")}
    asked = fault_server.count
    assert asked == 1 and "Mrs. Anke Dekker (character; also: Anke, Mrs. Dekker)" in fault_server.requests[0].body["messages"][-1]["content"]
    assert run(root, *args, cwd=tmp_path).returncode == 0 and fault_server.count == asked  # cached: not asked again


SHEET = ["Greet counts the loaves before dawn.", "She sends Pim out with the van.", "Femke slams the door on her stepmother.",
         "Lotte plays the piano above the chemist's shop."]


def test_the_embedded_model_through_llama_cpp_server_never_breaks_the_ledger(bakers, tmp_path: Path, llama_server: str) -> None:  # noqa: ANN001
    """SmolLM2-135M cannot do this job: whatever it answers, every name written in full is kept, a pick
    it makes quotes the beat, and a beat whose answer was set aside says so."""
    _, _, root = bakers
    (tmp_path / "sheet.txt").write_text("\n".join(SHEET) + "\n")
    proc = run(root, "sheet.txt", "--bible", str(root), "--store", str(tmp_path / "store"), "--resolver", "model",
               "--llm", "openai", "--model", "smollm2", "--base-url", llama_server, "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    beats = json.loads(proc.stdout)["beats"]
    for beat, named in zip(beats, ["Greet Achterberg", "Pim Achterberg", "Femke Veen", "Lotte Maas"], strict=True):
        lore = {p["name"]: p for p in beat["lore"]}
        assert named in lore
        for p in lore.values():
            if p["reason"] == "model":
                words = {w.lower().strip(".,'") for w in beat["text"].split()}
                assert any(w.lower().strip(".,'") in words for w in (p["match"] or "").split())
        assert beat["resolver"] is None or "the rules chose" in beat["resolver"]


def test_a_large_bible_lists_the_candidates_not_every_entry(bakers, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    """Past ``CATALOGUE_MAX`` entries the question lists what the rules found, who is on stage, and the
    entries nearest the beat: the prompt stays the same size at 10 entries or 10,000."""
    import b2p.resolver

    monkeypatch.setattr(b2p.resolver, "CATALOGUE_MAX", 4)
    monkeypatch.setattr(b2p.resolver, "CANDIDATES", 2)
    ScriptedLLM.prompts.clear()
    ledger(bakers, ["Greet counts the loaves.", "Femke slams the door on her stepmother."], {"slams": "Femke Veen — Femke"}, tmp_path)
    listed = [line for line in ScriptedLLM.prompts[-1].splitlines() if line.startswith("- ") and "(character" in line]
    names = {line[2:].split(" (")[0] for line in listed}
    assert {"Femke Veen", "Marijke Bos", "Greet Achterberg"} <= names  # named, the relation, on stage
    assert len(names) <= 2 + 2 + 1  # the rules' picks, the nearest two, the stage


def test_a_dry_run_asks_the_model_nothing(bakers, tmp_path: Path, fault_server: FaultServer) -> None:  # noqa: ANN001
    """``generate --dry-run`` prints the prompts a run would send and calls no model: with --resolver model
    too (the lore then is the rules', each beat says so)."""
    _, _, root = bakers
    (tmp_path / "sheet.txt").write_text("Saskia buys herring from the fishwife.\n")
    proc = subprocess.run([*b2p_command(), "generate", "sheet.txt", "--bible", str(root), "--store", str(tmp_path / "store"),
                           "--resolver", "model", "--llm", "openai", "--model", "gpt-4o-mini", "--base-url", fault_server.url,
                           "--dry-run"], cwd=tmp_path, capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL,
                          env={**os.environ, "COLUMNS": "200", "B2P_CACHE_DIR": str(tmp_path / "cache")})
    assert proc.returncode == 0, proc.stderr
    assert fault_server.count == 0


def test_lore_refuses_model_flags_without_the_model_resolver(bakers, tmp_path: Path) -> None:  # noqa: ANN001
    _, _, root = bakers
    proc = run(root, "--beat", "Saskia waits.", "--bible", str(root), "--store", str(tmp_path / "store"), "--llm", "openai", cwd=tmp_path)
    assert proc.returncode != 0 and "add --resolver model" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_a_chapters_trace_says_the_resolver_and_why_its_answer_was_set_aside(bakers, tmp_path: Path, fault_server: FaultServer) -> None:  # noqa: ANN001
    """The server answers every request with one line of prose: as the resolver's answer it names no
    entry, so the rules choose, and the chapter's trace says so beside the beat."""
    from b2p.trace import trace_path

    _, _, root = bakers
    (tmp_path / "sheet.txt").write_text("Saskia buys herring from the fishwife.\n")
    proc = subprocess.run([*b2p_command(), "generate", "sheet.txt", "--bible", str(root), "--store", str(tmp_path / "store"),
                           "--resolver", "model", "--llm", "openai", "--model", "gpt-4o-mini", "--base-url", fault_server.url,
                           "--words-per-beat", "20", "-o", "chapter.md"], cwd=tmp_path, capture_output=True, text=True, timeout=600,
                          stdin=subprocess.DEVNULL, env={**os.environ, "COLUMNS": "200", "B2P_REDRAFTS": "0", "B2P_CACHE_DIR": str(tmp_path / "cache")})
    assert proc.returncode == 0, proc.stderr
    trace = json.loads(trace_path(tmp_path / "chapter.md").read_text())
    assert trace["options"]["resolver"] == "model"
    assert any("the model's answer named no entry" in n and "the rules chose" in n for n in trace["beats"][0]["notes"])


@pytest.mark.parametrize("answer", [
    'Pim Achterberg — "Pim" and "his"\nSaskia Achterberg — his sister',
    "Pim Achterberg (character) — Pim\nSaskia Achterberg (character; also: Saskia) — his sister (Saskia)",
    "Pim Achterberg — Pim (the subject)\nSaskia Achterberg — his sister",
])
def test_quotes_in_the_shapes_models_write_them_are_read(bakers, tmp_path: Path, answer: str) -> None:  # noqa: ANN001
    beat = ledger(bakers, ["Pim loads the van and phones his sister."], {"phones": answer}, tmp_path)[0]
    assert picks(beat) == {"Pim Achterberg": "named", "Saskia Achterberg": "scene"} and beat.resolver is None


def test_an_ensemble_beat_may_name_most_of_a_small_catalogue(bakers, tmp_path: Path) -> None:  # noqa: ANN001
    beat = "Greet, Willem, Pim, Saskia and Lotte sit down to supper at the bakery."
    answer = "\n".join(f"{n} — {n.split()[0]}" for n in ("Greet Achterberg", "Willem Achterberg", "Pim Achterberg", "Saskia Achterberg", "Lotte Maas"))
    got = ledger(bakers, [beat], {"supper": answer}, tmp_path)[0]
    assert len(picks(got)) == 5 and got.resolver is None


def test_names_stand_when_the_model_leaves_out_several(bakers, tmp_path: Path) -> None:  # noqa: ANN001
    """A model that answers with one of the three people a beat names did not read it closely (the
    embedded SmolLM2 does this): the names it left out stand. One name left out is its call (above)."""
    beat = ledger(bakers, ["Pim, Saskia and Lotte argue in the van."], {"argue": "Pim Achterberg — Pim"}, tmp_path)[0]
    assert picks(beat) == {"Pim Achterberg": "named", "Saskia Achterberg": "named", "Lotte Maas": "named"}
