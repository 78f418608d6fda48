"""Cold start: how long a writer waits for ``b2p`` commands that do little work, from a fresh process.

Each round runs every command once as a new process, in a rotating order, next to ``python -c
pass`` (the floor: starting the interpreter). Figures are medians over ``--runs`` rounds, and each
command's ratio to ``python -c pass`` measured in the same run (this machine is shared and noisy).

- ``b2p --help``: the CLI must not import its heavy libraries (torch, chromadb, llama_cpp) to print help;
- ``b2p lore --beat … --bible NAME``: one beat's lore from an ingested bible (store, alias index, ONNX
  query embedding);
- ``b2p lore --beat … --bible FOLDER``: the same, naming the bible's folder, so b2p first checks it
  is unchanged (re-reads every file; a no-op ingest);
- ``b2p entries --bible NAME``: list the bible's entries.

The sample bible ``lunar_mining`` is ingested once into ``<cache>/sample`` (not timed). The
commands run as an installed b2p does, with its modules compiled: bytecode is written (under
``<cache>/pycache``) even where ``PYTHONDONTWRITEBYTECODE`` is set, so no round recompiles b2p.

    python benchmarks/cold_start.py [--runs 7] [--cache DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import SAMPLE_BIBLE, b2p_command, default_cache, log, median, sample_store, use_cache  # noqa: E402

NAME = "cold_start"
BEAT = "Jack radios Dr. Thorne from the crater rim while Xander holds the work lights steady."
# The issue names no number for --help beyond "instant"; lore's is issue 11's (it was ≤ 2 s).
TARGETS = {"b2p --help": "instant (≤ 0.5 s here)", "b2p lore --beat … --bible NAME": "≤ 0.6 s", "b2p entries": "≤ 2 s"}


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one run of cmd as a new process."""
    with tempfile.TemporaryFile() as err:
        t = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, env=env)
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage
        wall = time.perf_counter() - t
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            err.seek(0)
            raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}): {err.read().decode(errors='replace').strip()}")
    return wall, usage.ru_utime + usage.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=7, help="rounds; each figure is a median over them [7]")
    ap.add_argument("--cache", type=Path, default=default_cache(), help="where the sample store is kept [$B2P_BENCH_CACHE or <tmp>/b2p-bench]")
    args = ap.parse_args()
    cache = use_cache(args.cache)
    store = sample_store(cache)
    b2p = b2p_command()
    commands = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "b2p --help": [*b2p, "--help"],
        "b2p lore --beat … --bible NAME": [*b2p, "lore", "--beat", BEAT, "--bible", SAMPLE_BIBLE.name, "--store", str(store), "--json"],
        "b2p lore --beat … --bible FOLDER": [*b2p, "lore", "--beat", BEAT, "--bible", str(SAMPLE_BIBLE), "--store", str(store), "--json"],
        "b2p entries --bible NAME": [*b2p, "entries", "--bible", SAMPLE_BIBLE.name, "--store", str(store), "--json"],
    }
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"} | {"PYTHONPYCACHEPREFIX": str(cache / "pycache")}
    names = list(commands)
    for name in names:  # one untimed run each: page cache, .pyc files
        proc = subprocess.run(commands[name], capture_output=True, text=True, env=env)
        if proc.returncode != 0:
            raise SystemExit(f"{name} failed ({proc.returncode}): {proc.stderr.strip()}")
    walls: dict[str, list[float]] = {n: [] for n in names}
    cpus: dict[str, list[float]] = {n: [] for n in names}
    for r in range(args.runs):
        order = names[r % len(names):] + names[: r % len(names)]
        for name in order:
            wall, cpu = timed(commands[name], env)
            walls[name].append(wall)
            cpus[name].append(cpu)
        log(NAME, f"round {r + 1}/{args.runs}: " + ", ".join(f"{n} {walls[n][-1]:.2f}s" for n in names))
    floor = median(walls["python -c pass"])
    out = {
        "runs": args.runs,
        "targets": TARGETS,
        "median_s": {n: round(median(w), 3) for n, w in walls.items()},
        "ratio_to_python": {n: round(median(w) / floor, 1) for n, w in walls.items() if n != "python -c pass"},
        # CPU time (user + sys) suffers less than wall time from other work on a shared machine.
        "median_cpu_s": {n: round(median(c), 3) for n, c in cpus.items()},
        "all_s": {n: [round(x, 3) for x in w] for n, w in walls.items()},
    }
    print(json.dumps(out, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
