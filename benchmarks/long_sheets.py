"""Long sheets and long beats: ``b2p lore`` on a sheet of many beats, and on one very long beat, before
and after the fix for issue 13 (a 20k-beat sheet took 6.5 GB; a 1.2 MB beat ran past 180 s).

"Before" is the code at ``--before REV`` (default: the last commit before the fix), unpacked with
``git archive`` into a temporary folder; "after" is this checkout. Both run as fresh ``b2p lore --json``
processes on the same machine in the same run, against the sample bible (ingested once into the
cache), and each run's wall time, CPU time and peak RSS (``wait4``) are recorded (on a shared machine
the CPU time is the steadier figure). Figures are ratios within this
run: after/before at each size, and how each grows with size (per beat, per character): flat memory
and linear time give growth ratios near 1 (time per beat or character is counted past a one-beat run's,
which is mostly starting the process).

    python benchmarks/long_sheets.py [--beats 250,2000] [--chars 20000,200000] [--before REV|none]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import ROOT, SAMPLE_BIBLE, default_cache, log, use_cache  # noqa: E402

NAME = "long_sheets"
BEFORE = "97db7a3"  # main just before issue 13's batching and linear-time beat fixes were merged
NOISE = 1.0  # seconds: a run this close to the one-beat floor says nothing about growth
RUN = "import sys; sys.argv[0] = 'b2p'; import cli; cli.main()"  # the CLI of whichever checkout PYTHONPATH names


def source_beats() -> list[str]:
    lines = []
    for sheet in sorted((SAMPLE_BIBLE / "beats").glob("*.txt")):
        lines += [ln for ln in sheet.read_text().splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    return lines


def long_beat(chars: int, words: list[str], seed: int = 1) -> str:
    rng = random.Random(seed)
    out, n = [], 0
    while n < chars:
        w = rng.choice(words)
        out.append(w)
        n += len(w) + 1
    return " ".join(out)[:chars]


def run(code: Path, args: list[str], cwd: Path, timeout: float) -> dict[str, float | bool]:
    """One ``b2p`` process from ``code``: wall seconds and peak RSS in MB (None past ``timeout``)."""
    env = {**os.environ, "PYTHONPATH": str(code), "B2P_MAX_BEAT_CHARS": "10000000"}  # the old code ignores the setting
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", RUN, *args], cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = start + timeout
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.perf_counter() > deadline:
            proc.kill()
            os.wait4(proc.pid, 0)
            return {"ok": False, "seconds": None, "cpu_seconds": None, "peak_mb": None, "note": f"killed after {timeout:g} s"}
        time.sleep(0.05)
    seconds = time.perf_counter() - start
    ok = os.waitstatus_to_exitcode(status) == 0
    result: dict = {"ok": ok, "seconds": round(seconds, 2), "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 2),
                    "peak_mb": round(usage.ru_maxrss / 1024, 1)}
    if not ok:
        result["note"] = (proc.stderr.read() or b"").decode("utf-8", "replace").strip().splitlines()[-1:]
    return result


def ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a is not None and b else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--beats", default="250,2000", help="sheet sizes, in beats")
    parser.add_argument("--chars", default="20000,200000", help="lengths of the single long beat, in characters")
    parser.add_argument("--before", default=BEFORE, help="git revision to compare with, or 'none'")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds before a run is killed and reported as such")
    parser.add_argument("--cache", type=Path, default=default_cache())
    args = parser.parse_args()

    cache = use_cache(args.cache)
    # Ingested in a child: a process forked from this one starts with this one's peak RSS on its record.
    made = f"from pathlib import Path; from benchmarks._common import sample_store; print(sample_store(Path({str(cache)!r})))"
    store = Path(subprocess.run([sys.executable, "-c", made], cwd=ROOT, check=True, capture_output=True, text=True).stdout.strip())
    work = Path(tempfile.mkdtemp(prefix="b2p-long-sheets-"))
    codes = {"after": ROOT}
    try:
        if args.before != "none":
            before = work / "before"
            before.mkdir()
            archive = subprocess.run(["git", "-C", str(ROOT), "archive", args.before], check=True, capture_output=True).stdout
            subprocess.run(["tar", "-x", "-C", str(before)], input=archive, check=True)
            codes = {"before": before, "after": ROOT}
        beats = source_beats()
        words = " ".join(beats).split()
        cases: list[tuple[str, int, Path]] = []
        for n in (int(x) for x in args.beats.split(",")):
            sheet = work / f"sheet-{n}.txt"
            sheet.write_text("\n".join(beats[i % len(beats)] for i in range(n)) + "\n")
            cases.append(("sheet", n, sheet))
        for n in (int(x) for x in args.chars.split(",")):
            sheet = work / f"beat-{n}.txt"
            sheet.write_text(long_beat(n, words) + "\n")
            cases.append(("long_beat", n, sheet))
        results: dict = {"sheet": [], "long_beat": [], "one_beat": {}}
        one = work / "one.txt"
        one.write_text(beats[0] + "\n")
        for name, code in codes.items():  # the floor: starting b2p and answering one beat
            log(NAME, f"one beat: {name}")
            results["one_beat"][name] = run(code, ["lore", str(one), "--bible", "lunar_mining", "--store", str(store), "--json"], work, args.timeout)
        for kind, n, sheet in cases:
            row: dict = {"beats" if kind == "sheet" else "chars": n}
            for name, code in codes.items():  # the same case back to back, so both see the same machine
                log(NAME, f"{kind} {n}: {name}")
                row[name] = run(code, ["lore", str(sheet), "--bible", "lunar_mining", "--store", str(store), "--json"], work, args.timeout)
            if "before" in row:
                row["after_over_before"] = {k: ratio(row["after"][k], row["before"][k]) for k in ("seconds", "cpu_seconds", "peak_mb")}
            results[kind].append(row)
        growth: dict[str, dict] = {}

        def per_unit(row: dict, name: str, unit: str, clock: str) -> float | None:
            """Seconds per beat (or character) past the one-beat floor; None when lost in the floor's noise."""
            t, floor = row[name][clock], results["one_beat"][name][clock]
            return (t - floor) / row[unit] if t is not None and floor is not None and t - floor >= NOISE else None

        for kind, unit in (("sheet", "beats"), ("long_beat", "chars")):
            rows = results[kind]
            if len(rows) < 2:
                continue
            small, big = rows[0], rows[-1]
            growth[kind] = {"sizes": [small[unit], big[unit]], **{name: {
                **{f"{clock}_per_{unit[:-1]}": ratio(per_unit(big, name, unit, clock), per_unit(small, name, unit, clock))
                   for clock in ("seconds", "cpu_seconds")},
                "peak_mb": ratio(big[name]["peak_mb"], small[name]["peak_mb"]),
            } for name in codes}}
        print(json.dumps({"benchmark": NAME, "before": args.before, "results": results,
                          "growth_from_smallest_to_largest": growth}, indent=2))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
