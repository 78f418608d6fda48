"""A model backend is one class: a third backend defined in this file, and nowhere else, is chosen by
name and configured like the built-in ones (b2p.toml, env ``B2P_*``, flags) and writes a chapter
through ``b2p generate``.

``FakeLLM`` answers from its options instead of a model: what is under test is the registry and the
settings around it, which a real model would only slow down.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import Field
from typer.testing import CliRunner

from b2p.errors import ConfigError, ModelError
from b2p.llm import LLM, BackendOptions, Completion, GenOptions, Message, OnText, backends, check_llm, load_llm
from b2p.settings import Settings, load_settings
from b2p.trace import trace_path
from cli import app

SENTENCE = "The dust settled over the crater while the radio hissed."
SHEET = "1. Jack and Xander dig at Varro Crater.\n2. Jack calls Dr. Selene Thorne at Outpost Meridian.\n"


class FakeLLM(LLM):
    """The whole of the third backend."""

    backend = "fake"

    class Options(BackendOptions):
        fake_sentence: str = Field(SENTENCE, description="What the fake model writes for every request.")
        fake_context: int = Field(2048, ge=512, description="The fake model's context window, in tokens.")

    @classmethod
    def check(cls, settings: Settings) -> None:
        if not settings.backend_options("fake").fake_sentence.strip():  # type: ignore[attr-defined]
            raise ModelError("the fake backend has nothing to say: set fake_sentence")

    @classmethod
    def from_settings(cls, settings: Settings) -> FakeLLM:
        return cls(settings.backend_options("fake"))  # type: ignore[arg-type]

    def __init__(self, options: FakeLLM.Options) -> None:
        self.name, self.context_window, self.sentence = "fake-model", options.fake_context, options.fake_sentence

    def count_tokens(self, messages: list[Message]) -> int:
        return sum(len(m["content"].split()) + 4 for m in messages)

    def complete(self, messages: list[Message], options: GenOptions, on_text: OnText | None = None) -> Completion:
        if on_text is not None:
            on_text(self.sentence)
        return Completion(text=self.sentence, prompt_tokens=self.count_tokens(messages), completion_tokens=len(self.sentence.split()))


def test_defining_the_class_registers_it_after_the_built_in_ones() -> None:
    assert list(backends())[:2] == ["local", "openai"] and backends()["fake"] is FakeLLM


def test_its_options_come_from_the_file_env_and_flags_in_that_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "b2p.toml"
    cfg.write_text('llm = "fake"\nfake_sentence = "From the file."\nfake_context = 1024\n', encoding="utf-8")
    s = load_settings(cfg)
    assert s.llm == "fake" and s.backend_options() == FakeLLM.Options(fake_sentence="From the file.", fake_context=1024)
    monkeypatch.setenv("B2P_FAKE_SENTENCE", "From the env.")
    assert load_settings(cfg).backend_options().fake_sentence == "From the env."  # type: ignore[attr-defined]
    s = load_settings(cfg, fake_sentence="From a flag.")
    assert s.backend_options().fake_sentence == "From a flag." and s.backend_options().fake_context == 1024  # type: ignore[attr-defined]
    model = load_llm(s)
    assert isinstance(model, FakeLLM) and model.sentence == "From a flag." and model.context_window == 1024


def test_its_options_get_the_same_one_line_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "b2p.toml"
    cfg.write_text("fake_sentense = 'x'\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"b2p\.toml: unknown setting 'fake_sentense' \(did you mean \"fake_sentence\"\?\)$"):
        load_settings(cfg)
    cfg.write_text("fake_context = 100\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"b2p\.toml: fake_context: Input should be greater than or equal to 512$"):
        load_settings(cfg)
    with pytest.raises(ConfigError, match=r"^option: llm: Input should be 'local', 'openai' or 'fake'$"):
        load_settings(None, llm="fak")
    monkeypatch.setenv("B2P_FAKE_CONTEXT", "lots")
    with pytest.raises(ConfigError, match=r"^environment \(B2P_\*\): fake_context: Input should be a valid integer"):
        load_settings(None)


def test_its_own_check_runs_before_anything_is_loaded() -> None:
    with pytest.raises(ModelError, match="nothing to say"):
        check_llm(Settings(llm="fake", fake_sentence=" "))


def test_a_second_class_with_its_name_or_an_option_that_shadows_a_setting_is_refused() -> None:
    with pytest.raises(TypeError, match="defined twice"):
        class Again(FakeLLM):
            backend = "fake"
    with pytest.raises(TypeError, match="'budget' is a shared setting"):
        class Budget(FakeLLM):
            backend = "budgeted"

            class Options(BackendOptions):
                budget: int = Field(3, description="clashes with the lore budget")
    with pytest.raises(TypeError, match="needs a default"):
        class Required(FakeLLM):
            backend = "required"

            class Options(BackendOptions):
                must: str = Field(description="no default")
    assert list(backends()) == ["local", "openai", "fake"]


def test_b2p_generate_writes_a_chapter_with_it(tmp_path: Path, sample_store: Settings) -> None:
    sheet, out, cfg = tmp_path / "sheet.txt", tmp_path / "chapter.md", tmp_path / "b2p.toml"
    sheet.write_text(SHEET, encoding="utf-8")
    cfg.write_text(f'store = "{sample_store.store}"\nllm = "fake"\nfake_context = 4096\n', encoding="utf-8")
    args = ["generate", str(sheet), "--bible", "lunar_mining", "--config", str(cfg), "-o", str(out), "--no-stream"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.stderr
    trace = json.loads(trace_path(out).read_text(encoding="utf-8"))
    assert trace["llm"] == "fake" and trace["model"] == "fake-model" and trace["options"]["context_window"] == 4096
    assert [b["text"] for b in trace["beats"]] == [SENTENCE, SENTENCE]
    assert out.read_text(encoding="utf-8").count(SENTENCE) == 2

    cfg.write_text(f'store = "{sample_store.store}"\nllm = "fake"\nfake_sentence = ""\n', encoding="utf-8")
    refused = CliRunner().invoke(app, [*args, "--only", "1"])
    assert refused.exit_code == 1 and refused.stderr.strip() == "error: the fake backend has nothing to say: set fake_sentence"
