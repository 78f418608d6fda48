"""The model backends against real parts: the embedded GGUF in-process, llama.cpp's OpenAI-compatible
server, and a scriptable fault server on loopback for the retry and error paths."""

from __future__ import annotations

import time
import traceback
from collections.abc import Iterator
from pathlib import Path

import pytest

from b2p.errors import ConfigError, ModelError
from b2p.llm import GenOptions, estimate_cost, known_context_window, load_llm
from b2p.llm_local import LocalLLM
from b2p.llm_openai import PLACEHOLDER_KEY, OpenAILLM
from b2p.settings import Settings
from tests.plugins.servers import OK_PROMPT_TOKENS, OK_TEXT, FaultServer, embedded_gguf, free_port

SECRET = "sk-test-SECRET123"
PROMPT = [
    {"role": "system", "content": "You are a novelist. Write vivid, concise prose."},
    {"role": "user", "content": "Write one sentence: Mara, a smuggler, boards a ship at night."},
]


@pytest.fixture(scope="module")
def local() -> Iterator[LocalLLM]:
    model = LocalLLM(n_ctx=1024, seed=11)
    yield model
    model.close()


def fault_llm(server: FaultServer, **kw: object) -> OpenAILLM:
    args: dict[str, object] = {"model": "fault-model", "base_url": server.url, "api_key": SECRET, "timeout": 5.0,
                               "retries": 3, "backoff_base": 0.01, "backoff_max": 0.05}
    return OpenAILLM(**{**args, **kw})  # type: ignore[arg-type]


def assert_no_secret(err: BaseException) -> None:
    shown = str(err) + repr(err) + "".join(traceback.format_exception(err))
    assert SECRET not in shown
    assert "SECRET123" not in shown


# ── local backend: the embedded GGUF ─────────────────────────────────────────────────────────


def test_local_streams_text_that_matches_the_result(local: LocalLLM) -> None:
    pieces: list[str] = []
    out = local.complete(PROMPT, GenOptions(max_tokens=16, temperature=0.7), on_text=pieces.append)
    assert out.text.strip()
    assert len(pieces) > 1, "text should arrive in several streamed pieces"
    assert "".join(pieces) == out.text
    assert out.prompt_tokens > 20 and 0 < out.completion_tokens <= 16
    assert out.seconds > 0
    assert local.name == "SmolLM2-135M-Instruct.Q4_1"
    assert local.context_window == 1024
    assert local.cost(out.prompt_tokens, out.completion_tokens) == 0.0


def test_local_stops_on_the_token_limit(local: LocalLLM) -> None:
    out = local.complete(PROMPT, GenOptions(max_tokens=3))
    assert out.finish_reason == "length"
    assert out.completion_tokens == 3
    assert 0 < len(out.text.split()) <= 3


def test_local_count_tokens_matches_llama_cpp_own_prompt_count(local: LocalLLM) -> None:
    from llama_cpp import Llama

    raw = Llama(model_path=str(embedded_gguf()), n_ctx=1024, verbose=False)
    try:
        for messages in (PROMPT, PROMPT[1:], [*PROMPT, {"role": "assistant", "content": "She ran."},
                                              {"role": "user", "content": "Go on, with the ship's name."}]):
            real = raw.create_chat_completion(messages=messages, max_tokens=1)["usage"]["prompt_tokens"]  # type: ignore[index]
            assert local.count_tokens(messages) == real
    finally:
        raw.close()


def test_local_same_seed_gives_the_same_draft() -> None:
    options = GenOptions(max_tokens=12, temperature=0.9, seed=1234)
    first = LocalLLM(n_ctx=512)
    try:
        a = first.complete(PROMPT, options).text
    finally:
        first.close()
    second = LocalLLM(n_ctx=512)
    try:
        b = second.complete(PROMPT, options).text
    finally:
        second.close()
    assert a == b


def test_local_refuses_a_prompt_larger_than_its_context(local: LocalLLM) -> None:
    huge = [{"role": "user", "content": "The tide rolls in over the old harbour. " * 200}]
    with pytest.raises(ModelError, match=r"context; shorten the prompt or raise n_ctx \(in b2p\.toml, or env B2P_N_CTX\)$"):
        local.complete(huge, GenOptions(max_tokens=8))  # the setting's real names: there is no --n-ctx flag


def test_local_missing_or_bogus_model_file_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"model file not found.*--model-path") as missing:
        LocalLLM(tmp_path / "nope.gguf")
    assert "\n" not in str(missing.value)
    bogus = tmp_path / "notes.gguf"
    bogus.write_text("not a model")
    with pytest.raises(ModelError, match="not a GGUF"):
        LocalLLM(bogus)


def test_load_llm_picks_backends_by_name(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="not found"):
        load_llm(Settings(llm="local", model_path=tmp_path / "x.gguf"))
    llm = load_llm(Settings(llm="openai", base_url="http://127.0.0.1:9/v1", model="m", context_window=2048))
    assert isinstance(llm, OpenAILLM) and llm.name == "m" and llm.context_window == 2048
    llm.close()
    typo = Settings().model_copy(update={"llm": "locl"})  # as if a plugin list had been edited wrongly
    with pytest.raises(ConfigError, match='did you mean "local"'):
        load_llm(typo)


# ── openai backend against llama.cpp's real OpenAI-compatible server ─────────────────────────


def test_openai_backend_streams_from_llama_server(llama_server: str) -> None:
    llm = OpenAILLM(base_url=llama_server, model="smollm2", timeout=60)
    pieces: list[str] = []
    out = llm.complete(PROMPT, GenOptions(max_tokens=16, temperature=0.7), on_text=pieces.append)
    llm.close()
    assert out.text.strip() and len(pieces) > 1 and "".join(pieces) == out.text
    assert out.prompt_tokens > 20 and 0 < out.completion_tokens <= 16
    assert out.seconds > 0


def test_openai_backend_without_streaming_reports_length(llama_server: str) -> None:
    llm = OpenAILLM(base_url=llama_server, model="smollm2", timeout=60)
    out = llm.complete(PROMPT, GenOptions(max_tokens=4))
    llm.close()
    assert out.text.strip()
    assert out.finish_reason == "length"
    assert out.completion_tokens == 4
    # our offline estimate never undercounts what the real tokenizer saw
    assert llm.count_tokens(PROMPT) >= out.prompt_tokens


# ── keys ─────────────────────────────────────────────────────────────────────────────────────


def test_missing_openai_key_says_how_to_set_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ModelError) as err:
        load_llm(Settings(llm="openai"))
    message = str(err.value)
    assert "export OPENAI_API_KEY=" in message and "--base-url" in message and "B2P_API_KEY" in message


def test_openai_key_is_never_sent_to_another_server(fault_server: FaultServer,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    llm = load_llm(Settings(llm="openai", base_url=fault_server.url, model="fault-model"))
    assert llm.complete(PROMPT, GenOptions(max_tokens=50)).text == OK_TEXT
    assert fault_server.requests[0].key == PLACEHOLDER_KEY


def test_b2p_api_key_is_sent_but_never_shown(fault_server: FaultServer) -> None:
    fault_server.script(["401"])  # the server echoes the key in its error, as some do
    llm = load_llm(Settings(llm="openai", base_url=fault_server.url, model="fault-model", api_key=SECRET))
    with pytest.raises(ModelError) as err:
        llm.complete(PROMPT, GenOptions(max_tokens=50))
    assert fault_server.count == 1, "an auth failure is not retried"
    assert fault_server.requests[0].key == SECRET
    assert "HTTP 401" in str(err.value) and "B2P_API_KEY" in str(err.value)
    assert "***" in str(err.value)
    assert_no_secret(err.value)


# ── faults ───────────────────────────────────────────────────────────────────────────────────


def test_429_then_ok_succeeds_on_the_second_request(fault_server: FaultServer) -> None:
    fault_server.script(["429", "ok"])
    pieces: list[str] = []
    out = fault_llm(fault_server).complete(PROMPT, GenOptions(max_tokens=50), on_text=pieces.append)
    assert out.text == OK_TEXT == "".join(pieces)
    assert fault_server.count == 2
    assert out.prompt_tokens == OK_PROMPT_TOKENS and out.completion_tokens == len(OK_TEXT.split())
    assert fault_server.requests[1].body["stream_options"] == {"include_usage": True}


def test_500s_exhaust_the_retries_then_one_clear_error(fault_server: FaultServer) -> None:
    fault_server.script(["500"] * 10)
    with pytest.raises(ModelError) as err:
        fault_llm(fault_server, retries=3).complete(PROMPT, GenOptions(max_tokens=50))
    assert fault_server.count == 4
    message = str(err.value)
    assert "HTTP 500" in message and "after 4 attempts" in message and fault_server.url in message
    assert "\n" not in message
    assert_no_secret(err.value)


def test_backoff_grows_between_attempts(fault_server: FaultServer) -> None:
    fault_server.script(["503"] * 3)
    start = time.perf_counter()
    with pytest.raises(ModelError, match="HTTP 503.*after 3 attempts"):
        fault_llm(fault_server, retries=2, backoff_base=0.2, backoff_max=5).complete(PROMPT, GenOptions())
    # waits of ~0.2 s and ~0.4 s (±20 %) between the three attempts
    assert 0.45 < time.perf_counter() - start < 3


def test_slow_server_times_out_quickly(fault_server: FaultServer) -> None:
    fault_server.script(["slow"])
    start = time.perf_counter()
    with pytest.raises(ModelError, match=r"did not answer within 1 s \(timed out\).*after 1 attempt\)") as err:
        fault_llm(fault_server, timeout=1.0, retries=0).complete(PROMPT, GenOptions(max_tokens=50))
    assert time.perf_counter() - start < 2.5
    assert fault_server.count == 1
    assert_no_secret(err.value)


def test_slow_then_ok_recovers(fault_server: FaultServer) -> None:
    fault_server.slow_seconds = 2.0
    fault_server.script(["slow", "ok"])
    out = fault_llm(fault_server, timeout=0.5, retries=1).complete(PROMPT, GenOptions(max_tokens=50))
    assert out.text == OK_TEXT and fault_server.count == 2


def test_stream_stalling_mid_way_times_out(fault_server: FaultServer) -> None:
    fault_server.script(["stall"])
    pieces: list[str] = []
    with pytest.raises(ModelError, match="stopped sending") as err:
        fault_llm(fault_server, timeout=1.0).complete(PROMPT, GenOptions(max_tokens=50), on_text=pieces.append)
    assert pieces == OK_TEXT.split(" ")[:1] + [" " + w for w in OK_TEXT.split(" ")[1:2]]
    assert "not retried" in str(err.value) and fault_server.count == 1


@pytest.mark.parametrize("cut", ["cut", "eof"])
def test_cut_stream_after_text_was_shown_is_one_error(fault_server: FaultServer, cut: str) -> None:
    fault_server.script([cut, "ok"])
    pieces: list[str] = []
    with pytest.raises(ModelError, match="cut the response stream") as err:
        fault_llm(fault_server).complete(PROMPT, GenOptions(max_tokens=50), on_text=pieces.append)
    # what the user saw stays what it was: no second copy of the beginning from a retry
    assert len(pieces) == 2 and fault_server.count == 1
    assert f"after {len(''.join(pieces))} characters" in str(err.value)
    assert_no_secret(err.value)


@pytest.mark.parametrize("cut", ["cut", "eof"])
def test_cut_stream_before_anything_was_shown_is_retried(fault_server: FaultServer, cut: str) -> None:
    fault_server.script([cut, "ok"])
    out = fault_llm(fault_server).complete(PROMPT, GenOptions(max_tokens=50))
    assert out.text == OK_TEXT and fault_server.count == 2


def test_cut_streams_until_retries_run_out(fault_server: FaultServer) -> None:
    fault_server.script(["cut"] * 5)
    with pytest.raises(ModelError, match=r"cut the response stream.*after 3 attempts"):
        fault_llm(fault_server, retries=2).complete(PROMPT, GenOptions(max_tokens=50))
    assert fault_server.count == 3


def test_refused_connection_names_the_url_and_attempts() -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    llm = OpenAILLM(base_url=url, retries=1, backoff_base=0.01, timeout=2)
    with pytest.raises(ModelError, match=r"could not connect to .*127\.0\.0\.1.*connection refused.*after 2 attempts"):
        llm.complete(PROMPT, GenOptions(max_tokens=5))


def test_garbage_stream_is_a_clear_error(fault_server: FaultServer) -> None:
    fault_server.script(["garbage"] * 2)
    with pytest.raises(ModelError, match="malformed response.*after 2 attempts"):
        fault_llm(fault_server, retries=1).complete(PROMPT, GenOptions(max_tokens=50))


def test_server_without_stream_usage_still_works(fault_server: FaultServer) -> None:
    fault_server.reject_stream_options = True
    llm = fault_llm(fault_server, retries=0)
    first = llm.complete(PROMPT, GenOptions(max_tokens=50))
    second = llm.complete(PROMPT, GenOptions(max_tokens=4))
    assert first.text == OK_TEXT and second.finish_reason == "length"
    # one rejected request, then it stops asking for usage; counts fall back to estimates
    assert fault_server.count == 3 and "stream_options" not in fault_server.requests[2].body
    assert first.prompt_tokens == llm.count_tokens(PROMPT) and first.completion_tokens >= len(OK_TEXT.split())
    assert second.completion_tokens == 4


def test_request_body_carries_the_options(fault_server: FaultServer) -> None:
    llm = fault_llm(fault_server, seed=5)
    llm.complete(PROMPT, GenOptions(max_tokens=7, temperature=0.3, stop=["\n\n"]))
    body = fault_server.requests[0].body
    assert body["model"] == "fault-model" and body["messages"] == PROMPT and body["stream"] is True
    assert body["max_tokens"] == 7 and body["temperature"] == 0.3 and body["stop"] == ["\n\n"]
    assert isinstance(body["seed"], int)


PENALTIES = {"repeat_penalty": 1.3, "frequency_penalty": 0.4, "presence_penalty": 0.6}


def test_penalties_reach_an_openai_compatible_server(fault_server: FaultServer) -> None:
    fault_llm(fault_server, penalties=PENALTIES).complete(PROMPT, GenOptions(max_tokens=7))
    body = fault_server.requests[0].body
    assert body["frequency_penalty"] == 0.4 and body["presence_penalty"] == 0.6
    assert body["repeat_penalty"] == 1.3 and body["repetition_penalty"] == 1.3  # llama.cpp's and vLLM's names
    fault_llm(fault_server).complete(PROMPT, GenOptions(max_tokens=7))  # unset: nothing sent
    assert not {"frequency_penalty", "presence_penalty", "repeat_penalty", "repetition_penalty"} & set(fault_server.requests[1].body)


def test_a_server_that_refuses_a_penalty_is_asked_again_without_it_and_never_sent_it_again(fault_server: FaultServer) -> None:
    fault_server.reject_params = {"repeat_penalty", "repetition_penalty"}  # as OpenAI answers fields it does not know
    llm = fault_llm(fault_server, penalties=PENALTIES, retries=0)
    first = llm.complete(PROMPT, GenOptions(max_tokens=50))
    second = llm.complete(PROMPT, GenOptions(max_tokens=50))
    assert first.text == second.text == OK_TEXT
    assert fault_server.count == 4  # refused twice (one name at a time), then answered; the next request goes straight through
    last = fault_server.requests[-1].body
    assert not {"repeat_penalty", "repetition_penalty"} & set(last) and last["frequency_penalty"] == 0.4
    assert llm.rejected == {"repeat_penalty", "repetition_penalty"}


def test_llama_cpp_server_accepts_the_penalties(llama_server: str) -> None:
    llm = OpenAILLM(base_url=llama_server, model="smollm2", timeout=60, penalties=PENALTIES)
    out = llm.complete(PROMPT, GenOptions(max_tokens=8, temperature=0.7, seed=3))
    llm.close()
    assert out.text.strip() and not llm.rejected


def test_penalties_reach_llama_cpp_in_process() -> None:
    """The same seed writes something else once a strong presence penalty reaches the sampler."""
    options = GenOptions(max_tokens=24, temperature=0.9, seed=99)
    drafts = []
    for penalty in (0.0, 2.0):
        model = LocalLLM(n_ctx=1024, seed=1, presence_penalty=penalty, frequency_penalty=penalty)
        drafts.append(model.complete(PROMPT, options).text)
        model.close()
    assert drafts[0] != drafts[1]


def test_penalties_are_settings_of_each_backend(tmp_path: Path) -> None:
    from b2p.settings import load_settings

    cfg = tmp_path / "b2p.toml"
    cfg.write_text("repeat_penalty = 1.1\npresence_penalty = 0.5\n")
    s = load_settings(cfg)
    local, remote = s.backend_options("local"), s.backend_options("openai")
    assert local.repeat_penalty == 1.1 and local.presence_penalty == 0.5 and local.frequency_penalty == 0.0  # type: ignore[attr-defined]
    assert remote.repeat_penalty == 1.1 and remote.presence_penalty == 0.5 and remote.frequency_penalty is None  # type: ignore[attr-defined]
    llm = OpenAILLM.from_settings(load_settings(cfg, llm="openai", base_url="http://127.0.0.1:9/v1"))
    assert llm.penalties == {"repeat_penalty": 1.1, "presence_penalty": 0.5}
    llm.close()
    cfg.write_text("presence_penalty = 7\n")
    with pytest.raises(ConfigError, match="presence_penalty"):
        load_settings(cfg)


# ── tables ───────────────────────────────────────────────────────────────────────────────────


def test_cost_and_context_tables() -> None:
    assert estimate_cost("gpt-4o-mini", 1_000_000, 1_000_000) == pytest.approx(0.75)
    assert estimate_cost("gpt-4o-mini-2024-07-18", 2_000, 500) == pytest.approx(0.0006)
    assert estimate_cost("openai/gpt-4o", 1_000_000, 0) == pytest.approx(2.50)
    assert estimate_cost("SmolLM2-135M-Instruct.Q4_1", 100, 100) is None
    assert known_context_window("gpt-4.1-mini") == 1_047_576
    assert known_context_window("gpt-4o") == 128_000
    assert known_context_window("mistral-small") == 8_192
