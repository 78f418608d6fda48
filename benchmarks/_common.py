"""What the benchmarks share: where cached bibles and stores live, the sample store, running ``b2p``.

The cache layout is the one ``lore_latency.py`` uses (``<cache>/synth-<n>-s<seed>-g<version>/``
holding the generated bible and its ``.b2p`` store, ``<cache>/model-cache`` for the ONNX twin), so
a 10k-entry store embedded once (~1 h on 2 busy cores) serves every benchmark.
"""

from __future__ import annotations

import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SEED = 7  # lore_latency.py's default: the same seed shares the same cached bibles
SAMPLE_BIBLE = ROOT / "story_bibles" / "lunar_mining"


def log(name: str, msg: str) -> None:
    print(f"[{name}] {msg}", file=sys.stderr, flush=True)


def default_cache() -> Path:
    """``$B2P_BENCH_CACHE``, else ``<tmp>/b2p-bench`` (kept between runs, shared by the benchmarks)."""
    return Path(os.environ.get("B2P_BENCH_CACHE") or Path(tempfile.gettempdir()) / "b2p-bench")


def use_cache(cache: Path) -> Path:
    """Create the cache and point b2p's model cache (the ONNX twin) into it, as lore_latency.py does."""
    cache = cache.expanduser().resolve()
    cache.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("B2P_CACHE_DIR", str(cache / "model-cache"))
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    return cache


def synthetic(cache: Path, n: int, seed: int = SEED, ingest: bool = True):  # noqa: ANN201 - (SyntheticBible, store path)
    """A generated bible of ``n`` entries and (if ``ingest``) its store, made once and reused."""
    from benchmarks.lore_latency import prepare

    return prepare(cache, n, seed, ingest=ingest)


def synthetic_cached(cache: Path, n: int, seed: int = SEED) -> bool:
    from benchmarks.synthetic import GENERATOR_VERSION

    return (cache / f"synth-{n}-s{seed}-g{GENERATOR_VERSION}" / "ingested.ok").is_file()


def sample_store(cache: Path) -> Path:
    """A store holding the sample bible ``lunar_mining`` (ingested on first use)."""
    store = cache / "sample" / ".b2p"
    done = cache / "sample" / "ingested.ok"
    if not done.is_file():
        from b2p.settings import load_settings
        from ingest.pipeline import ingest_bible

        shutil.rmtree(store, ignore_errors=True)
        ingest_bible(SAMPLE_BIBLE, load_settings(None, store=store))
        done.write_text("ok\n")
    return store


def b2p_command() -> list[str]:
    exe = Path(sys.executable).with_name("b2p")
    if exe.is_file():
        return [str(exe)]
    found = shutil.which("b2p")
    return [found] if found else [sys.executable, str(ROOT / "cli.py")]


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q * (len(s) - 1))))]


def median(values: list[float]) -> float:
    return statistics.median(values)
