"""The bad-input corpus: every way a writer can hand b2p something broken, run through the real CLI.

Each case runs ``b2p …`` as a subprocess in a fresh folder and asserts what the writer sees:

- exit code non-zero (2 for a bad bible, beat sheet, flag or setting; 1 for a store or model problem);
- stderr is exactly the expected lines — one line per problem, each naming the file and line
  (``path:line: …``) or the fix — and there is no traceback anywhere;
- the store that existed before (a tiny two-entry bible, ingested once per module) is
  byte-for-byte unchanged, and no store appears where there was none.

Cases live in ``CASES`` below, one row each, so the list reads as the spec. Their inputs are small
files under ``tests/bad_inputs/`` (copied into the case's folder: ``bible/``, ``beats.txt``,
``b2p.toml``), or, for anything huge, binary or strange (non-UTF-8 bytes, 20 MB, symlink loops,
FIFOs, unreadable files), made at run time by the row's ``make`` function.

A row may name a ``known`` deviation (a bug reported, not yet fixed): the rest of the row is still
asserted, and only that deviation turns the case into an xfail; once fixed, the case passes.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

HERE = Path(__file__).resolve().parent / "bad_inputs"
GOOD = "good_bible"  # the bible name in the module's store
TIMEOUT = 240.0  # loading torch for a missing embedding model takes ~30 s on a busy 2-core machine
HANG_TIMEOUT = 15.0  # for rows known to hang: long enough for any real answer

# Kinds of known deviation (see the bug notes on each row).
STORE_WRITE = "store-write"  # Chroma logs every opener in chroma.sqlite3 and rewrites its HNSW files on a query, so an error found after those changes bytes
HANG = "hang"  # the command never returns


def b2p_command() -> list[str]:
    exe = Path(sys.executable).with_name("b2p")
    if exe.is_file():
        return [str(exe)]
    found = shutil.which("b2p")
    assert found, "the b2p console script is not installed (pip install -e .)"
    return [found]


def setpriv_prefix() -> list[str] | None:
    """A prefix that makes even root unable to read a mode-000 file (None when impossible here)."""
    if os.geteuid() != 0:
        return []
    exe = shutil.which("setpriv")
    if exe is None:
        return None
    prefix = [exe, "--bounding-set=-dac_override,-dac_read_search", "--"]
    probe = Path(os.environ.get("TMPDIR", "/tmp")) / f"b2p-setpriv-probe-{os.getpid()}"
    probe.write_text("x")
    probe.chmod(0)
    try:
        ok = subprocess.run([*prefix, "cat", str(probe)], capture_output=True).returncode != 0
    finally:
        probe.unlink()
    return prefix if ok else None


# ----------------------------------------------------------------------------- runtime inputs


def entry(name: str = "Jack Harlan", body: str = "A miner who reads the ground by feel.") -> str:
    return f"---\nname: {name}\n---\n{body}\n"


def write(path: Path, data: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def non_utf8_entry(w: Path) -> None:
    write(w / "bible/characters/jack.md", b"---\nname: Jack Harlan\n---\nHe drinks caf\xe9 noir on shift.\n")  # Latin-1 'e acute'


def binary_entry(w: Path) -> None:
    write(w / "bible/characters/portrait.md", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))


def huge_entry(w: Path) -> None:
    head = "---\nname: History\n---\n"
    write(w / "bible/notes/history.md", head + ("The long war ground on for another year. " * 500_000)[: 20_000_000 - len(head)])  # 20 MB


def empty_folder(w: Path) -> None:
    (w / "bible").mkdir()


def only_hidden_and_beats(w: Path) -> None:
    write(w / "bible/.drafts/jack.md", entry())  # hidden folders are skipped
    write(w / "bible/beats/chapter1.md", entry())  # so is the top-level beats/ folder
    write(w / "bible/README.txt", "not an entry")


def file_symlink_loop(w: Path) -> None:
    write(w / "bible/characters/jack.md", entry())
    (w / "bible/characters/ping.md").symlink_to("pong.md")
    (w / "bible/characters/pong.md").symlink_to("ping.md")


def folder_symlink_loop(w: Path) -> None:
    (w / "bible/places").mkdir(parents=True)
    (w / "bible/places/again").symlink_to("..")  # places/again/again/again/… must not be walked
    (w / "bible/self").symlink_to(".")


def bible_is_a_self_loop(w: Path) -> None:
    (w / "bible").symlink_to("bible")


def dangling_symlink(w: Path) -> None:
    write(w / "bible/characters/jack.md", entry())
    (w / "bible/characters/xander.md").symlink_to("../../drafts/xander.md")  # moved away since


def fifo_entry(w: Path) -> None:
    write(w / "bible/characters/jack.md", entry())
    os.mkfifo(w / "bible/characters/pipe.md")  # reading it would block forever


def device_entry(w: Path) -> None:
    write(w / "bible/characters/jack.md", entry())
    (w / "bible/characters/zero.md").symlink_to("/dev/zero")  # reading it would never end


def unreadable_entry(w: Path) -> None:
    write(w / "bible/characters/jack.md", entry())
    write(w / "bible/characters/secret.md", entry("Secret")).chmod(0)


def binary_beats(w: Path) -> None:
    write(w / "beats.txt", b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)) * 8)


def non_utf8_beats(w: Path) -> None:
    write(w / "beats.txt", "Jack leaves Meridian.\nHe orders a café au lait.\n".encode("cp1252"))


def fifo_beats(w: Path) -> None:
    os.mkfifo(w / "beats.txt")


def device_beats(w: Path) -> None:
    (w / "beats.txt").symlink_to("/dev/zero")


def unreadable_beats(w: Path) -> None:
    write(w / "beats.txt", "Jack leaves Meridian.\n").chmod(0)


def fifo_config(w: Path) -> None:
    os.mkfifo(w / "settings.toml")


def corrupt_trace(w: Path) -> None:
    write(w / "chapter.md", "# Chapter\n\nJack drove out.\n")
    write(w / "chapter.trace.json", '{"bible": "good_bible", "beats": [')  # cut off mid-write by another tool


def saved_chapter(w: Path, text: str | None = None) -> None:
    """A one-beat chapter of one_beat.txt as b2p saves it, its trace beside it; ``text`` is what the writer made of the file."""
    from b2p.chapterfile import new_chapter, saved_hash
    from b2p.trace import BeatTrace, ChapterTrace, Totals, sheet_hash

    beat, prose = (HERE / "beats" / "one_beat.txt").read_text(encoding="utf-8").strip(), "Jack drove out before dawn."
    saved = ChapterTrace(bible="good_bible", beats_file="beats.txt", beats_sha256=sheet_hash([beat]), mode="sequential", model="m", llm="local",
                         options={}, beats=[BeatTrace(index=1, beat=beat, lore=[], text=prose, saved_sha256=saved_hash(prose))],
                         totals=Totals(beats=1, beats_done=1), complete=True)
    write(w / "chapter.trace.json", saved.model_dump_json())
    write(w / "chapter.md", text if text is not None else new_chapter("Chapter", {1: prose}).dumps())
def long_beat(w: Path) -> None:
    write(w / "beats.txt", "Jack drives out.\n" + ("Jack digs. " * 2000)[:20_000] + "\nJack drives home.\n")


def other_model(w: Path) -> None:
    """A second embedding-model folder: the same files under another path, i.e. another model identity."""
    from b2p.embeddings import resolve_model_path

    src = Path(resolve_model_path("all-MiniLM-L6-v2"))
    dst = w / "other-model"
    for f in src.rglob("*"):
        if f.is_file():
            (dst / f.relative_to(src)).parent.mkdir(parents=True, exist_ok=True)
            (dst / f.relative_to(src)).symlink_to(f)


def billion_laughs(w: Path) -> None:
    rows = ["  a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    rows += [f"  {chr(97 + i)}: &{chr(97 + i)} [{', '.join(['*' + chr(96 + i)] * 9)}]" for i in range(1, 9)]
    write(w / "bible/lore/bomb.md", "---\nname: Bomb\nimported:\n" + "\n".join(rows) + "\n---\nA harmless-looking entry.\n")


def deep_front_matter(w: Path) -> None:
    write(w / "bible/lore/deep.md", "---\nname: Deep\nimported:\n  x: " + "[" * 600 + "]" * 600 + "\n---\nDeep.\n")


def long_number_front_matter(w: Path) -> None:
    write(w / "bible/lore/long.md", "---\nname: Long\nimported:\n  order: " + "7" * 5000 + "\n---\nLong.\n")


def link_outside_bible(w: Path) -> None:
    write(w / "bible/characters/jack.md", entry())
    write(w / "elsewhere/notes.md", entry("Private Notes", "Not part of this book."))
    (w / "bible/characters/notes.md").symlink_to("../../elsewhere/notes.md")


def deep_json(depth: int) -> str:
    return '{"entries": {"0": {"key": ["a"], "content": "x", "extensions": ' + '{"a": ' * depth + "1" + "}" * depth + "}}}"


def card_png(card_json: str) -> bytes:
    import base64
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0))
    text = chunk(b"tEXt", b"chara\0" + base64.b64encode(card_json.encode()))
    return b"\x89PNG\r\n\x1a\n" + ihdr + text + chunk(b"IDAT", zlib.compress(b"\x00\x80")) + chunk(b"IEND", b"")


def world(**entry: Any) -> str:
    return json.dumps({"entries": {"0": {"uid": 0, "key": ["Mara"], "comment": "Mara", "content": "A captain.", **entry}}})


def garbage_store(w: Path) -> None:
    """A store whose database is random bytes (a bad copy, a disk error)."""
    import random

    write(w / "damaged/chroma.sqlite3", random.Random(13).randbytes(200_000))


def truncated_store(w: Path) -> None:
    """A store whose database was cut short (a copy interrupted, a full disk when it was made)."""
    import sqlite3

    db = w / "damaged/chroma.sqlite3"
    db.parent.mkdir(parents=True)
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE collections (id TEXT, name TEXT)")
    con.executemany("INSERT INTO collections VALUES (?, ?)", [(str(i), "x" * 500) for i in range(400)])
    con.commit()
    con.close()
    with open(db, "r+b") as fh:
        fh.truncate(db.stat().st_size // 2)


def imported_bible(w: Path) -> None:
    """A bible holding one entry imported from SillyTavern whose imported field was broken by hand."""
    write(w / "bible/lore/mara.md", "---\nname: Mara\nimported:\n  format: sillytavern\n  source: w.json\n  uid: 0\n"
          "  key: [Mara]\n  selectiveLogic: {mode: any}\n---\nA captain.\n")


def book(w: Path, front: str = "", body: str = "A keeper who reads the weather by feel.", chapters: bool = True, yaml: str = "") -> None:
    """A two-chapter book (bible.yaml ``chapters:``, else none at all) with one entry, ``jack.md``:
    ``front`` is added to its front matter (from line 3), ``body`` is its text (from line 5 when
    ``front`` is one line)."""
    write(w / "bible/characters/jack.md", f"---\nname: Jack Harlan\n{front}---\n{body}\n")
    if chapters:
        write(w / "bible/bible.yaml", "title: Two Nights\n" + (yaml or "chapters: [beats/one.txt, beats/two.txt]\n"))
        write(w / "bible/beats/one.txt", "Jack climbs the tower.\n")
        write(w / "bible/beats/two.txt", "Jack keeps the light.\n")


# ----------------------------------------------------------------------------- the table


@dataclass
class Case:
    id: str
    argv: str  # after 'b2p'; {store} {refused} are filled in; run in the case's own folder
    lines: list[str]  # regexes, one per stderr line, each matched in full
    code: int = 2
    bible: str | None = None  # tests/bad_inputs/bibles/<name> → ./bible
    beats: str | None = None  # tests/bad_inputs/beats/<name> → ./beats.txt
    config: str | None = None  # tests/bad_inputs/config/<name>/b2p.toml → ./b2p.toml
    good: bool = False  # tests/bad_inputs/good_bible → ./good_bible
    make: Callable[[Path], None] | None = None
    env: dict[str, str] = field(default_factory=dict)
    unprivileged: bool = False  # run without root's power to read any file
    known: tuple[str, str] | None = None  # (kind, bug note)
    seconds: float | None = None  # must answer within this (hostile inputs that used to run for minutes)
    absent: tuple[str, ...] = ()  # paths in the case's folder that must not exist afterwards (nothing half-written)


def C(id: str, argv: str, *lines: str, **kw: Any) -> Any:  # noqa: A002 - one table row
    return pytest.param(Case(id, argv, list(lines), **kw), id=id)


B = r"bible/characters/jack\.md"
ON_GOOD = "--bible good_bible --store {store}"
LORE = f"lore {ON_GOOD}"
GEN = "generate beats.txt --bible good_bible --store {store}"
CASES = [
    # ---- the bible: YAML front matter ------------------------------------------------------------
    C("yaml_malformed", "ingest bible --store {store}", rf"{B}:2: bad YAML in front matter: expected ',' or '\]'.*", bible="yaml_malformed"),
    C("yaml_tab_indent", "ingest bible --store {store}", rf"{B}:3: bad YAML in front matter: found character '\\t'.*", bible="yaml_tab_indent"),
    C("front_matter_never_closed", "ingest bible --store {store}", rf"{B}:1: front matter is never closed: add a '---' line after it",
      bible="front_matter_never_closed"),
    C("no_front_matter", "ingest bible --store {store}", rf"{B}:1: missing YAML front matter: the file must start with a '---' line.*",
      bible="no_front_matter"),
    C("front_matter_a_list", "ingest bible --store {store}", rf"{B}:2: front matter must be 'key: value' lines.*", bible="front_matter_a_list"),
    C("name_missing", "ingest bible --store {store}", rf"{B}:1: missing 'name': add 'name: <the entry's name>' to the front matter",
      bible="name_missing"),
    C("name_empty", "ingest bible --store {store}", rf"{B}:2: missing 'name': add 'name: .*", bible="name_empty"),
    C("name_a_mapping", "ingest bible --store {store}", rf"{B}:2: 'name' must be a string", bible="name_a_mapping"),
    C("aliases_a_string", "ingest bible --store {store}", rf"{B}:3: 'aliases' must be a list of non-empty strings, e.g. aliases: \['Jack'\]",
      bible="aliases_a_string"),
    C("tags_with_empty_item", "ingest bible --store {store}", rf"{B}:3: 'tags' must be a list of non-empty strings.*", bible="tags_with_empty_item"),
    C("always_not_a_bool", "ingest bible --store {store}", r"bible/notes/style\.md:3: 'always' must be true or false, not 'sometimes'",
      bible="always_not_a_bool"),
    C("unknown_field", "ingest bible --store {store}", rf"{B}:3: unknown field 'colour'", bible="unknown_field"),
    C("misspelt_field", "ingest bible --store {store}", rf"{B}:3: unknown field 'alias' \(did you mean \"aliases\"\?\)", bible="misspelt_field"),
    C("duplicate_names", "ingest bible --store {store}",
      r"bible/characters/jack_again\.md:3: name 'jack harlan' is already used by bible/characters/jack\.md; names must be unique",
      bible="duplicate_names"),
    C("duplicate_ids", "ingest bible --store {store}", r"bible/characters/xander\.md:\d+: id 'characters/jack' is already used by bible/characters/jack\.md",
      bible="duplicate_ids"),
    C("empty_body", "ingest bible --store {store}", rf"{B}:4: empty body: write the entry's lore below the front matter", bible="empty_body"),
    C("bible_yaml_malformed", "ingest bible --store {store}", r"bible/bible\.yaml:\d+: bad YAML: .*", bible="bible_yaml_malformed"),
    C("bible_yaml_unknown_key", "ingest bible --store {store}", r"bible/bible\.yaml:2: unknown field 'author'", bible="bible_yaml_unknown_key"),
    C("several_broken_files", "ingest bible --store {store}",  # one line per problem, all in one pass
      rf"{B}:3: 'aliases' must be a list .*",
      r"bible/items/lantern\.md:1: front matter is never closed.*",
      r"bible/places/meridian\.md:3: unknown field 'size'",
      bible="several_broken"),
    # ---- the bible: bytes and the file system -----------------------------------------------------
    C("non_utf8_entry", "ingest bible --store {store}", rf"{B}:4: not UTF-8 text \(byte 0xe9\); re-save the file as UTF-8", make=non_utf8_entry),
    C("binary_entry", "ingest bible --store {store}", r"bible/characters/portrait\.md:\d+: binary file, not Markdown text", make=binary_entry),
    C("entry_20_mb", "ingest bible --store {store}", r"bible/notes/history\.md:1: entry is 20\.0 MB; split it into entries under 1 MB", make=huge_entry),
    C("empty_bible_folder", "ingest bible --store {store}", r"bible: no entries: a bible needs at least one \*\.md file.*", make=empty_folder),
    C("only_hidden_and_beats", "ingest bible --store {store}", r"bible: no entries: .*", make=only_hidden_and_beats),
    C("bible_path_is_a_file", "ingest bible/characters/jack.md --store {store}",
      rf"{B}: is a file; pass the bible's folder \(the one holding characters/, places/, …\)",
      make=lambda w: write(w / "bible/characters/jack.md", entry())),
    C("bible_folder_missing", "ingest no_such_bible --store {store}", r"no_such_bible: no such folder"),
    C("file_symlink_loop", "ingest bible --store {store}",
      r"bible/characters/ping\.md:1: cannot read file: Too many levels of symbolic links",
      r"bible/characters/pong\.md:1: cannot read file: Too many levels of symbolic links", make=file_symlink_loop),
    C("folder_symlink_loop", "ingest bible --store {store}", r"bible: no entries: .*", make=folder_symlink_loop),
    C("bible_is_a_symlink_loop", "ingest bible --store {store}", r"bible: (no such folder|.*symbolic links.*|.*symlink.*)", make=bible_is_a_self_loop),
    C("dangling_symlink", "ingest bible --store {store}", r"bible/characters/xander\.md:1: cannot read file: No such file or directory \(a dangling link\)",
      make=dangling_symlink),
    C("fifo_entry", "ingest bible --store {store}", r"bible/characters/pipe\.md:1: not a regular file; pass a Markdown text file",
      make=fifo_entry),
    C("device_entry", "ingest bible --store {store}", r"bible/characters/zero\.md:1: not a regular file; .*", make=device_entry),
    C("unreadable_entry", "ingest bible --store {store}", r"bible/characters/secret\.md:1: cannot read file: Permission denied",
      make=unreadable_entry, unprivileged=True),
    # ---- the bible: hostile YAML, links and names ----------------------------------------------------
    C("front_matter_billion_laughs", "ingest bible --store {store}",
      r"bible/lore/bomb\.md:9: aliases \(\*e\) expand this YAML past 500,000 values; write the values out", make=billion_laughs, seconds=60),
    C("front_matter_600_deep", "ingest bible --store {store}", r"bible/lore/deep\.md:4: nested more than 100 levels deep; flatten it",
      make=deep_front_matter),
    C("front_matter_5000_digit_number", "ingest bible --store {store}",
      r"bible/lore/long\.md:4: bad YAML in front matter: a number longer than 4,300 digits", make=long_number_front_matter),
    C("symlink_outside_bible", "ingest bible --store {store}",
      r"bible/characters/notes\.md:1: a link to .*/elsewhere/notes\.md, outside the bible; copy the file in, or set 'allow_outside_links: true' in bible\.yaml",
      make=link_outside_bible),
    C("name_only_invisible", "ingest bible --store {store}",
      rf"{B}:2: 'name' has only invisible characters \(U\+200B U\+200D\); write the entry's name", bible="name_invisible"),
    # ---- beat sheets ------------------------------------------------------------------------------
    C("beats_empty", f"lore beats.txt {ON_GOOD}", r"beats\.txt: no beats: write one plot point per line", beats="empty.txt"),
    C("beats_whitespace_only", f"lore beats.txt {ON_GOOD}", r"beats\.txt: no beats: write one plot point per line", beats="whitespace_only.txt"),
    C("beats_comments_only", f"lore beats.txt {ON_GOOD}", r"beats\.txt: no beats: .*", beats="comments_only.txt"),
    C("beats_whitespace_only_generate", f"{GEN} --dry-run", r"beats\.txt: no beats: .*", beats="whitespace_only.txt"),
    C("beats_binary", f"{GEN} --dry-run", r"beats\.txt:1: binary file, not a beat sheet \(expected text, one beat per line\)", make=binary_beats),
    C("beats_non_utf8", f"lore beats.txt {ON_GOOD}", r"beats\.txt:2: not UTF-8 text \(byte 0xe9\); re-save the file as UTF-8", make=non_utf8_beats),
    C("beats_missing", f"{GEN} --dry-run", r"beats\.txt: beat sheet not found"),
    C("beats_a_folder", f"lore beats.txt {ON_GOOD}", r"beats\.txt: is a folder; pass a beat-sheet text file.*", make=lambda w: (w / "beats.txt").mkdir()),
    C("beats_fifo", f"lore beats.txt {ON_GOOD}", r"beats\.txt: not a regular file; .*", make=fifo_beats),
    C("beats_dev_zero", f"{GEN} --dry-run", r"beats\.txt: not a regular file; .*", make=device_beats),
    C("beats_only_list_markers", f"lore beats.txt {ON_GOOD}", r"beats\.txt: no beats: write one plot point per line", beats="only_markers.txt"),
    C("beats_unreadable", f"lore beats.txt {ON_GOOD}", r"beats\.txt: cannot read beat sheet: Permission denied", make=unreadable_beats, unprivileged=True),
    C("beats_unreadable_generate", f"{GEN} --dry-run", r"beats\.txt: cannot read beat sheet: Permission denied", make=unreadable_beats,
      unprivileged=True),
    C("beat_flag_empty", f"{LORE} --beat '   '", r"error: --beat is empty: write the beat's text"),
    C("lore_neither_sheet_nor_beat", LORE, r"error: give a beat sheet file or --beat \"TEXT\" \(one of them\)"),
    # ---- lorebooks: import and export --------------------------------------------------------------
    C("import_fifo", "import lorebook.json --into imported", r"lorebook\.json: not a regular file; pass the lorebook file .*",
      make=lambda w: os.mkfifo(w / "lorebook.json"), absent=("imported",)),
    C("import_json_100k_deep", "import deep.json --into imported",
      r"deep\.json: nested more than 100 levels deep; b2p cannot keep it in a bible entry",
      make=lambda w: write(w / "deep.json", "[" * 100_000 + "]" * 100_000), absent=("imported",), seconds=60),
    C("import_png_card_100k_deep", "import card.png --into imported",
      r"card\.png: PNG chunk 'chara': nested more than 100 levels deep; b2p cannot keep it in a bible entry",
      make=lambda w: write(w / "card.png", card_png('{"spec": "chara_card_v2", "data": ' + "[" * 100_000 + "]" * 100_000 + "}")),
      absent=("imported",), seconds=60),
    C("import_json_500_deep", "import deep.json --into imported",
      r"deep\.json: nested more than 100 levels deep \(at entries\.0\.extensions\.a\.…\); b2p cannot keep it in a bible entry",
      make=lambda w: write(w / "deep.json", deep_json(500)), absent=("imported",)),
    C("import_json_900_deep", "import deep.json --into imported", r"deep\.json: nested more than 100 levels deep \(at .*\); .*",
      make=lambda w: write(w / "deep.json", deep_json(900)), absent=("imported",)),
    C("import_5000_digit_integer", "import world.json --into imported",
      r"world\.json: holds a number longer than 4,300 digits \(line 1\); b2p cannot keep it in a bible entry",
      make=lambda w: write(w / "world.json", world(order=int("9" * 4000)).replace("9" * 4000, "9" * 5000)), absent=("imported",)),
    C("import_selective_logic_a_list", "import world.json --into imported",
      r"world\.json: entry '0': 'selectiveLogic' must be a number 0-3 \(0 AND ANY, 1 NOT ALL, 2 NOT ANY, 3 AND ALL\), not \[1, 2\]",
      make=lambda w: write(w / "world.json", world(selectiveLogic=[1, 2])), absent=("imported",)),
    C("import_selective_logic_a_dict", "import world.json --into imported",
      r"""world\.json: entry '0': 'selectiveLogic' must be a number 0-3 .*, not \{"mode": "any"\}""",
      make=lambda w: write(w / "world.json", world(selectiveLogic={"mode": "any"})), absent=("imported",)),
    C("export_unknown_format", "export good_bible --format kobold -o out.json", r"--format 'kobold': b2p exports sillytavern or novelai",
      good=True, absent=("out.json",)),
    C("export_output_a_folder", "export good_bible --format novelai -o good_bible",
      r"good_bible: is a folder; pass the file to write, e\.g\. -o world\.json", good=True),
    C("export_broken_bible", "export bible --format sillytavern -o out.json", rf"{B}:2: bad YAML in front matter: expected ',' or '\]'.*",
      bible="yaml_malformed", absent=("out.json",)),
    C("export_imported_field_broken_by_hand", "export bible --format sillytavern -o out.json",
      r"""bible/lore/mara\.md:8: 'imported\.selectiveLogic' must be a number 0-3 .*, not \{"mode": "any"\}""",
      make=imported_bible, absent=("out.json",)),
    # ---- which bible, which store -----------------------------------------------------------------
    C("unknown_bible_name", "lore --bible goodbible --beat 'Jack drives out.' --store {store}",
      r"error: no bible 'goodbible' in the store at {store} \(did you mean \"good_bible\"\?\); bibles there: good_bible\. Run 'b2p ingest BIBLE_DIR' .*",
      code=1),
    C("unknown_bible_name_entries", "entries --bible nosuch --store {store}", r"error: no bible 'nosuch' in the store at {store}.*", code=1),
    C("bible_folder_missing_lore", "lore --bible ./no_such_bible --beat 'Jack drives out.' --store {store}", r"\./no_such_bible: no such bible folder"),
    C("bible_flag_is_a_file", "lore --bible beats.txt --store {store} --beat 'Jack drives out.'",
      r"beats\.txt: is a file; --bible takes an ingested bible's name or a bible folder", beats="one_beat.txt"),
    C("chroma_url_refused_lore", "lore --bible good_bible --beat 'Jack drives out.' --chroma-url {refused}",
      r"error: cannot reach the Chroma server at {refused} \(.*\); start it with 'chroma run --path DIR --port PORT' or drop --chroma-url", code=1),
    C("chroma_url_refused_ingest", "ingest good_bible --chroma-url {refused}", r"error: cannot reach the Chroma server at {refused} .*", code=1, good=True),
    C("chroma_url_not_a_url", "entries --bible good_bible --chroma-url localhost:8000",
      r"error: --chroma-url 'localhost:8000' is not a URL like http://127\.0\.0\.1:8000", code=1),
    C("store_from_other_embedding_model", "ingest good_bible --store {store} --embed-model other-model",
      r"error: the store's 'good_bible' was built with embedding model 'all-MiniLM-L6-v2', not '.*other-model'; "
      r"vectors cannot be mixed: re-ingest with --rebuild \(or use the same settings\)", code=1, good=True, make=other_model),
    C("store_from_other_chunking", "ingest good_bible --store {store}",
      r"error: the store's 'good_bible' was built with chunking '.*', not '.*'; vectors cannot be mixed: re-ingest with --rebuild.*",
      code=1, good=True, config="other_chunking"),
    C("store_database_garbage_lore", "lore --bible good_bible --store damaged --beat 'Jack drives out.'",
      r"error: damaged/chroma\.sqlite3: the store is damaged \(file is not a database\); rebuild it with "
      r"'b2p ingest BIBLE_DIR --store damaged --rebuild' \(the damaged store is moved to damaged\.damaged\)", code=1, make=garbage_store),
    C("store_database_garbage_ingest", "ingest good_bible --store damaged",
      r"error: damaged/chroma\.sqlite3: the store is damaged \(file is not a database\); rebuild it with "
      r"'b2p ingest good_bible --store damaged --rebuild' .*", code=1, good=True, make=garbage_store),
    C("store_database_truncated_entries", "entries --bible good_bible --store damaged",
      r"error: damaged/chroma\.sqlite3: the store is damaged \(the file is cut short: [\d,]+ of [\d,]+ bytes\); rebuild it with .*",
      code=1, make=truncated_store),
    C("store_database_empty_generate", "generate beats.txt --bible good_bible --store damaged --dry-run",
      r"error: damaged/chroma\.sqlite3: the store is damaged \(the file is empty\); .*", code=1, beats="one_beat.txt",
      make=lambda w: write(w / "damaged/chroma.sqlite3", b"")),
    C("chroma_url_silent_lore", "lore --bible good_bible --beat 'Jack drives out.' --chroma-url {silent}",
      r"error: the Chroma server at {silent} did not answer within 2 s; check that it is healthy, or raise chroma_timeout \(B2P_CHROMA_TIMEOUT\)",
      code=1, env={"B2P_CHROMA_TIMEOUT": "2"}, seconds=60),
    C("chroma_url_silent_ingest", "ingest good_bible --chroma-url {silent}", r"error: the Chroma server at {silent} did not answer within 2 s; .*",
      code=1, good=True, env={"B2P_CHROMA_TIMEOUT": "2"}, seconds=60),
    C("embedding_model_missing", "ingest bible --store {store} --embed-model no-such-model",
      r"error: cannot load embedding model 'no-such-model': .*; give a local path or a model already in the Hugging Face cache.*",
      code=1, make=lambda w: write(w / "bible/characters/jack.md", entry())),
    C("store_path_is_a_file", "lore --bible good_bible --store beats.txt --beat 'Jack drives out.'",
      r"error: beats\.txt: the store path is a file; pass a folder with --store", code=1, beats="one_beat.txt"),
    C("no_store_yet", "lore --bible good_bible --store fresh --beat 'Jack drives out.'",
      r"error: fresh: no b2p store here; run 'b2p ingest BIBLE_DIR' first \(or pass --store\)", code=1),
    # ---- settings: b2p.toml, --config, environment --------------------------------------------------
    C("toml_unknown_key", f"{LORE} --beat 'Jack drives out.'", r"error: b2p\.toml: unknown setting 'budjet' \(did you mean \"budget\"\?\)",
      config="unknown_key"),
    C("toml_not_toml", f"{LORE} --beat 'Jack drives out.'", r"error: b2p\.toml: not valid TOML: .*", config="not_toml"),
    C("toml_bad_value", f"{LORE} --beat 'Jack drives out.'", r"error: b2p\.toml: budget: Input should be greater than or equal to 0",
      config="bad_value"),
    C("config_flag_missing_file", f"{LORE} --beat 'Jack drives out.' --config nowhere.toml", r"error: nowhere\.toml: config file not found"),
    C("config_flag_fifo", f"{LORE} --beat 'Jack drives out.' --config settings.toml", r"error: settings\.toml: not a regular file; .*",
      make=fifo_config),
    C("config_flag_unreadable", f"{LORE} --beat 'Jack drives out.' --config settings.toml",
      r"error: settings\.toml: cannot read config file: Permission denied", unprivileged=True,
      make=lambda w: write(w / "settings.toml", "budget = 5\n").chmod(0)),
    C("config_flag_dev_zero", f"{LORE} --beat 'Jack drives out.' --config /dev/zero", r"error: /dev/zero: not a regular file; .*"),
    C("config_flag_a_folder", f"{LORE} --beat 'Jack drives out.' --config bible", r"error: bible: is a folder; pass a TOML settings file.*",
      make=empty_folder),
    C("env_bad_value", f"{LORE} --beat 'Jack drives out.'", r"error: environment \(B2P_\*\): budget: Input should be a valid integer.*",
      env={"B2P_BUDGET": "lots"}),
    # ---- flags ------------------------------------------------------------------------------------
    C("budget_negative", f"{LORE} --beat 'Jack drives out.' --budget -1", r"error: option: budget: Input should be greater than or equal to 0"),
    C("threshold_above_1", f"{LORE} --beat 'Jack drives out.' --threshold 2", r"error: option: threshold: Input should be less than or equal to 1"),
    C("budget_not_a_number", f"{LORE} --beat 'Jack drives out.' --budget lots", r"b2p lore: invalid value for '--budget': .*integer.*"),
    C("unknown_flag", f"{LORE} --beat 'Jack drives out.' --budjet 5", r"b2p lore: no such option '--budjet' \(did you mean '--budget'\?\)"),
    C("unknown_flag_no_suggestion", f"{GEN} --dry-run --colour red", r"b2p generate: no such option '--colour'; see 'b2p generate --help'",
      beats="one_beat.txt"),
    C("flag_missing_its_value", f"{LORE} --beat 'Jack drives out.' --budget", r"b2p lore: option '--budget' requires an argument"),
    C("flag_given_a_value", f"{LORE} --beat 'Jack drives out.' --json=yes", r"b2p lore: option '--json' does not take a value"),
    C("extra_argument", f"lore beats.txt more.txt {ON_GOOD}", r"b2p lore: got unexpected extra argument.*more\.txt.*", beats="one_beat.txt"),
    C("missing_beat_sheet_argument", "generate --bible good_bible --store {store}", r"b2p generate: missing argument .*; see 'b2p generate --help'"),
    C("no_bible_outside_a_bible_folder", "lore --beat 'Jack drives out.' --store {store}",
      r"error: no bible given, and /\S+/work is not in a bible folder \(one with bible\.yaml, or ingested before\); "
      r"pass --bible BIBLE_DIR, or run b2p inside the bible's folder"),
    C("no_bible_dir_outside_a_bible_folder", "ingest --store {store}",
      r"error: no bible given, and /\S+/work is not in a bible folder \(one with bible\.yaml, or ingested before\); "
      r"pass BIBLE_DIR, or run b2p inside the bible's folder"),
    C("unknown_command", "lor --beat 'Jack drives out.'", r"b2p: no such command 'lor' \(did you mean 'lore'\?\)"),
    C("unknown_top_level_flag", "--verbose lore", r"b2p: no such option '--verbose'; see 'b2p --help'"),
    C("mode_bogus", f"{GEN} --dry-run --mode bogus", r"error: option: mode: Input should be 'sequential', 'oneshot' or 'interactive'",
      beats="one_beat.txt"),
    C("llm_bogus", f"{GEN} --dry-run --llm bogus", r"error: option: llm: Input should be 'local' or 'openai'", beats="one_beat.txt"),
    C("only_not_a_number", f"{GEN} --dry-run --only x", r"error: --only 'x': 'x' is not a beat number; write e.g\. --only 5 or --only 5,7",
      beats="one_beat.txt"),
    C("only_zero", f"{GEN} -o chapter.md --only 0", r"error: --only '0': '0' is not a beat number; .*", beats="one_beat.txt"),
    C("only_past_the_sheet", f"{GEN} -o chapter.md --only 9", r"error: --only 9: the beat sheet beats\.txt has 1 beats \(1–1\)", beats="one_beat.txt"),
    C("only_without_output", f"{GEN} --only 1", r"error: --only needs -o CHAPTER\.md: the chapter and trace it continues from", beats="one_beat.txt"),
    C("n_zero", f"{GEN} --dry-run --n 0", r"error: option: n: Input should be greater than or equal to 1", beats="one_beat.txt"),
    C("temperature_too_hot", f"{GEN} --dry-run --temperature 5", r"error: option: temperature: Input should be less than or equal to 2",
      beats="one_beat.txt"),
    C("words_per_beat_tiny", f"{GEN} --dry-run --words-per-beat 1", r"error: option: words_per_beat: Input should be greater than or equal to 10",
      beats="one_beat.txt"),
    C("model_path_missing", f"{GEN} --dry-run --model-path nowhere.gguf",
      r"error: nowhere\.gguf: model file not found; pass --model-path with an existing \.gguf file", code=1, beats="one_beat.txt"),
    C("model_path_not_gguf", f"{GEN} --dry-run --model-path beats.txt",
      r"error: beats\.txt: not a GGUF model file; pass --model-path with a llama\.cpp \.gguf file", code=1, beats="one_beat.txt"),
    C("resume_corrupt_trace", f"{GEN} -o chapter.md --resume",
      r"error: chapter\.trace\.json: not JSON; delete it to start the chapter over, or pick another -o", beats="one_beat.txt", make=corrupt_trace),
    # ---- the book: chapters and lore that unfolds ------------------------------------------------------
    C("from_unknown_chapter", "ingest bible --store {store}", rf"{B}:3: 'from: 3': chapter 3 is not in the book \(chapters 1–2\)",
      make=lambda w: book(w, "from: 3\n")),
    C("from_after_until", "ingest bible --store {store}", rf"{B}:3: 'from: 2' is after 'until: 1': the entry would never be true",
      make=lambda w: book(w, "from: 2\nuntil: 1\n")),
    C("section_never_unlocks", "ingest bible --store {store}",
      rf"{B}:7: '## From chapter 2' never unlocks: the entry stops being true after chapter 1 \('until'\)",
      make=lambda w: book(w, "until: 1\n", "A keeper.\n\n## From chapter 2\n\nHe is the lost heir.")),
    C("alias_unknown_chapter", "ingest bible --store {store}", rf"{B}:4: 'aliases_from: 5': chapter 5 is not in the book \(chapters 1–2\)",
      make=lambda w: book(w, "aliases_from:\n  5: [the heir]\n")),
    C("gate_heading_without_number", "ingest bible --store {store}",
      rf"{B}:6: '## From chapter two': write the chapter as a number, e.g. '## From chapter 12'",
      make=lambda w: book(w, "", "A keeper.\n\n## From chapter two\n\nHe is the lost heir.")),
    C("gating_without_a_book", "ingest bible --store {store}",
      rf"{B}:3: 'from: 2': chapter 2: the book has no chapters; list them under 'chapters:' in bible\.yaml, or put beat sheets in beats/",
      make=lambda w: book(w, "from: 2\n", chapters=False)),
    C("chapter_file_read_as_entry", "ingest bible --store {store}",
      r"bible/bible\.yaml:3: chapter 1: its chapter file drafts/one\.md would be read as a bible entry; put it under beats/ or outside the bible \('out:'\)",
      make=lambda w: book(w, yaml="chapters:\n  - {beats: beats/one.txt, out: drafts/one.md}\n")),
    C("strict_with_an_earlier_chapter_unwritten", "generate bible/beats/two.txt --bible bible --store {store} --strict",
      r"error: chapter 1 \(beats/one\.txt\) is not written yet \(no .*/bible/beats/one\.md\); write it first \(b2p generate .*/bible/beats/one\.txt\), "
      r"or leave out --strict to go on without it", make=book, absent=("bible/beats/two.md", "bible/beats/two.trace.json")),
    C("lore_chapter_not_in_the_book", "lore --beat 'Jack climbs the tower.' --bible bible --store {store} --chapter 3",
      r"error: --chapter 3: the book in .*/bible has chapters 1–2", make=book),
    # ---- generate: refusals that need no store come before it is opened ------------------------------
    C("model_path_a_folder", f"{GEN} --dry-run --model-path bible", r"error: bible: is a folder; pass --model-path with a \.gguf file", code=1,
      beats="one_beat.txt", make=empty_folder),
    C("openai_without_a_key", f"{GEN} --dry-run --llm openai", r"error: no OpenAI API key: run `export OPENAI_API_KEY=sk-\.\.\.`, .*", code=1,
      beats="one_beat.txt"),
    C("only_without_a_saved_chapter", f"{GEN} -o chapter.md --only 1",
      r"error: --only: chapter\.md is not a chapter b2p wrote: there is no trace at chapter\.trace\.json; generate the chapter first", beats="one_beat.txt"),
    C("resume_trace_unreadable", f"{GEN} -o chapter.md --resume", r"error: chapter\.trace\.json: cannot read the trace: .*Permission denied.*",
      beats="one_beat.txt", unprivileged=True, make=lambda w: (corrupt_trace(w), (w / "chapter.trace.json").chmod(0))),
    C("unknown_bible_name_generate", "generate beats.txt --bible goodbible --store {store} --dry-run",
      r"error: no bible 'goodbible' in the store at {store} \(did you mean \"good_bible\"\?\); .*", code=1, beats="one_beat.txt"),
    # ---- generate: what -o names, and the chapter file --------------------------------------------------
    C("o_is_the_beat_sheet", f"{GEN} -o beats.txt", r"error: -o beats\.txt: is the beat sheet itself; pick another -o, or add --force to replace it",
      beats="one_beat.txt"),
    C("o_not_written_by_b2p", f"{GEN} -o notes.md",
      r"error: -o notes\.md: exists and was not written by b2p \(there is no trace notes\.trace\.json beside it\); pick another -o, or add --force to replace it",
      beats="one_beat.txt", make=lambda w: write(w / "notes.md", "My notes.\n"), absent=("notes.trace.json",)),
    C("o_a_folder_even_forced", f"{GEN} -o bible --force", r"error: -o bible: is a folder; name the chapter file, e\.g\. -o bible/chapter\.md",
      beats="one_beat.txt", make=empty_folder),
    C("o_a_fifo_even_forced", f"{GEN} -o pipe.md --force",
      r"error: -o pipe\.md: is a FIFO; b2p writes chapters to regular files only \(-o - or no -o prints the chapter\)",
      beats="one_beat.txt", make=lambda w: os.mkfifo(w / "pipe.md"), absent=("pipe.trace.json",)),
    C("o_dev_full_even_forced", f"{GEN} -o /dev/full --force", r"error: -o /dev/full: is a device; b2p writes chapters to regular files only .*",
      beats="one_beat.txt"),
    C("resume_a_typo_in_o", f"{GEN} -o chapterr.md --resume",
      r"error: --resume: chapterr\.md is not a chapter b2p wrote: there is no trace at chapterr\.trace\.json "
      r"\(did you mean \"chapter\.md\"\?\); leave out --resume to start it",
      beats="one_beat.txt", make=lambda w: saved_chapter(w), absent=("chapterr.md", "chapterr.trace.json")),
    C("chapter_marker_unclosed", f"{GEN} -o chapter.md --resume",
      r"error: chapter\.md:3: beat 1 is never closed \(<!-- /b2p beat 1 --> is missing\); nothing was written: put the markers back .*",
      beats="one_beat.txt", make=lambda w: saved_chapter(w, "# Chapter\n\n<!-- b2p beat 1 -->\nJack drove out before dawn.\n")),
    C("only_on_a_beat_edited_by_hand", f"{GEN} -o chapter.md --only 1",
      r"error: chapter\.md: beat 1 was edited by hand and --only 1 would replace your text; add --force to replace it, or rewrite other beats with --only N",
      beats="one_beat.txt", make=lambda w: saved_chapter(w, "<!-- b2p beat 1 -->\nMy own words.\n<!-- /b2p beat 1 -->\n")),
    # ---- keys and model settings (refused before any request) ---------------------------------------
    C("project_toml_sends_your_key_elsewhere", GEN,
      r"error: b2p\.toml \(found in the current folder\) sets base_url = http://127\.0\.0\.1:9/v1; your API key from B2P_API_KEY is only "
      r"sent to a server you name: pass --base-url http://127\.0\.0\.1:9/v1 or --config b2p\.toml to allow it",
      beats="one_beat.txt", config="redirect_key", env={"B2P_API_KEY": "sk-bad-inputs-0123456789"}),
    C("api_key_with_a_newline", f"{GEN} --llm openai --base-url http://127.0.0.1:9/v1",
      r"error: the API key in B2P_API_KEY is malformed: it has a line break at character 7 of 14; a key is one line of printable ASCII .*",
      beats="one_beat.txt", env={"B2P_API_KEY": "sk-abc\ndefghij"}),
    C("api_key_not_ascii", f"{GEN} --llm openai --base-url http://127.0.0.1:9/v1",
      r"error: the API key in B2P_API_KEY is malformed: it has a non-ASCII character \(U\+2013\) at character 7 of 14; .*",
      beats="one_beat.txt", env={"B2P_API_KEY": "sk-abc\u2013defghij"}),
    C("n_ctx_1e11", f"{GEN} --dry-run", r"error: b2p\.toml: n_ctx: Input should be less than or equal to 1048576", beats="one_beat.txt",
      config="n_ctx_huge"),
    C("n_ctx_past_what_the_model_was_trained_on", f"{GEN} --dry-run",
      r"error: n_ctx 100000 is more than SmolLM2-135M-Instruct\.Q4_1 was trained on \(8192 tokens\); set n_ctx \(in b2p\.toml, or env "
      r"B2P_N_CTX\) to at most 8192", beats="one_beat.txt", env={"B2P_N_CTX": "100000"}),
    C("temperature_nan", f"{GEN} --dry-run --temperature nan", r"error: option: temperature: Input should be a finite number", beats="one_beat.txt"),
    C("threshold_nan_in_the_environment", f"{LORE} --beat 'Jack drives out.'",
      r"error: environment \(B2P_\*\): threshold: Input should be a finite number", env={"B2P_THRESHOLD": "nan"}),
    C("request_deadline_zero", f"{GEN} --llm openai --base-url http://127.0.0.1:9/v1",
      r"error: environment \(B2P_\*\): request_deadline: Input should be greater than 0", beats="one_beat.txt", env={"B2P_REQUEST_DEADLINE": "0"}),
    # ---- beats and --bible as text ------------------------------------------------------------------
    C("beat_of_20k_characters", f"lore beats.txt {ON_GOOD}",
      r"beats\.txt:2: this beat is 20,000 characters long; a beat is one plot point: split it, or raise max_beat_chars \(now 10,000\)",
      make=long_beat),
    C("bible_flag_empty", "lore --bible '' --beat 'Jack drives out.' --store {store}",
      r"error: --bible is empty: give an ingested bible's name or a bible folder"),
    # ---- usage errors: one line from Typer too ------------------------------------------------------
    C("float_flag_not_a_number", f"{GEN} --temperature hot", r"b2p generate: invalid value for '--temperature': Input should be a valid number.*",
      beats="one_beat.txt"),
    C("generate_without_arguments", "generate", r"b2p generate: missing argument 'beats_file'; see 'b2p generate --help'"),
    C("unknown_command_lists_the_commands", "frobnicate", r"b2p: no such command 'frobnicate'; commands: ingest, entries, lore, .*"),
]


# ----------------------------------------------------------------------------- fixtures and helpers


def snapshot(folder: Path) -> dict[str, str]:
    """sha256 of every file under folder (symlinks by target), keyed by relative path."""
    out = {}
    for p in sorted(folder.rglob("*")):
        if p.is_symlink():
            out[str(p.relative_to(folder))] = "-> " + os.readlink(p)
        elif p.is_file():
            out[str(p.relative_to(folder))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def logical(folder: Path, scratch: Path) -> dict[str, object]:
    """What a store holds, as Chroma reads it back: every collection's metadata and records, and its
    nearest-neighbour answers (so the HNSW files are checked too). Read from a copy: opening writes."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    copy = scratch / f"logical-{folder.name}"
    shutil.copytree(folder, copy)
    client = chromadb.PersistentClient(path=str(copy), settings=ChromaSettings(anonymized_telemetry=False))
    out: dict[str, object] = {}
    for col in client.list_collections():
        col = client.get_collection(col if isinstance(col, str) else col.name)
        got = col.get(include=["documents", "metadatas", "embeddings"])
        metas = (json.dumps(m, sort_keys=True) for m in got["metadatas"])
        rows = sorted(zip(got["ids"], got["documents"], metas, (list(map(float, e)) for e in got["embeddings"])))
        near = col.query(query_embeddings=[r[3] for r in rows[:3]], n_results=len(rows), include=["distances"])
        out[col.name] = {"metadata": json.dumps(col.metadata, sort_keys=True), "rows": rows,
                         "near": [sorted(zip((round(d, 5) for d in ds), ids)) for ids, ds in zip(near["ids"], near["distances"])]}
    return out


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store holding the tiny two-entry ``good_bible``, ingested once through the real CLI.

    A pristine copy sits beside it: a case that changes the store (a known bug) is compared with it
    logically and then the store is put back, so the cases after it start from the same bytes.
    """
    root = tmp_path_factory.mktemp("bad-inputs-store")
    shutil.copytree(HERE / GOOD, root / GOOD)
    proc = subprocess.run([*b2p_command(), "ingest", GOOD, "--store", "store"], cwd=root, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr
    shutil.copytree(root / "store", root / "pristine")
    return root / "store"


@pytest.fixture(scope="module")
def silent() -> Any:
    """A server that accepts connections and never answers (a hung Chroma, a wrong port behind a proxy)."""
    import threading

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])  # read nothing, answer nothing
            except OSError:
                continue

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    listener.close()


def prepare(case: Case, work: Path) -> None:
    if case.bible:
        shutil.copytree(HERE / "bibles" / case.bible, work / "bible", symlinks=True)
    if case.beats:
        shutil.copyfile(HERE / "beats" / case.beats, work / "beats.txt")
    if case.config:
        shutil.copyfile(HERE / "config" / case.config / "b2p.toml", work / "b2p.toml")
    if case.good:
        shutil.copytree(HERE / GOOD, work / GOOD)
    if case.make:
        case.make(work)


# ----------------------------------------------------------------------------- the test


def test_corpus_is_large_enough() -> None:
    assert len(CASES) >= 30
    assert len({p.values[0].id for p in CASES}) == len(CASES)


def cases_by_class() -> dict[str, int]:
    """Rows of CASES per '# ---- <class> ----' comment, read from this file."""
    counts: dict[str, int] = {}
    current = None
    for line in Path(__file__).read_text(encoding="utf-8").splitlines():
        header = re.fullmatch(r"\s*# ---- (.+?) -+\s*", line)
        if header:
            current = header.group(1)
            counts.setdefault(current, 0)
        elif re.match(r'\s*C\("', line) and current is not None:
            counts[current] += 1
    return counts


def test_readme_counts_cases_by_class() -> None:
    counts = cases_by_class()
    assert sum(counts.values()) == len(CASES)
    table = dict(re.findall(r"^\| (?!class|\*\*)(.+?) \| (\d+) \|$", (HERE / "README.md").read_text(encoding="utf-8"), re.M))
    assert {k: int(v) for k, v in table.items()} == counts, "update the table in tests/bad_inputs/README.md"
    assert f"| **total** | **{len(CASES)}** |" in (HERE / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("case", CASES)
def test_bad_input(case: Case, store: Path, silent: str, tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    prefix: list[str] = []
    if case.unprivileged:
        got = setpriv_prefix()
        if got is None:
            pytest.skip("running as root without a way to drop CAP_DAC_OVERRIDE (setpriv): root can read a mode-000 file")
        prefix = got
    prepare(case, work)
    fill = {"store": str(store), "refused": f"http://127.0.0.1:{closed_port()}", "silent": silent}
    argv = [*prefix, *b2p_command(), *(a.format(**fill) for a in shlex.split(case.argv))]
    expected = [line.replace("{store}", re.escape(fill["store"])).replace("{refused}", re.escape(fill["refused"])).replace("{silent}", re.escape(silent))
                for line in case.lines]
    env = {**os.environ, "COLUMNS": "100", **case.env}
    made = {p for p in ("fresh", "store", ".b2p") if (work / p).exists()}
    before = snapshot(store)
    assert before == snapshot(store.parent / "pristine")

    hang = case.known is not None and case.known[0] == HANG
    try:
        proc = subprocess.run(argv, cwd=work, env=env, capture_output=True, text=True, errors="replace",
                              timeout=HANG_TIMEOUT if hang else case.seconds or TIMEOUT)
    except subprocess.TimeoutExpired:
        if hang:
            pytest.xfail(f"known bug: {case.known[1]}")  # type: ignore[index]
        raise
    shown = f"$ b2p {case.argv}\nexit {proc.returncode}\n--- stderr\n{proc.stderr}--- stdout\n{proc.stdout}"

    # What the writer sees.
    assert proc.returncode == case.code, shown
    assert "Traceback" not in proc.stderr + proc.stdout, shown
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == len(expected), shown
    for line, want in zip(lines, expected, strict=True):
        assert re.fullmatch(want, line), f"{line!r} does not match {want!r}\n{shown}"
    if len(expected) > 1:  # several problems: each line names its own file and line
        assert all(re.match(r"\S+:\d+: ", ln) for ln in lines), shown
    assert proc.stdout == "", shown  # nothing half-done on stdout, where scripts read results

    # Nothing was written where nothing should be.
    for p in case.absent:
        assert not (work / p).exists(), f"{p} was written by a failing command\n{shown}"
    for p in ("fresh", "store", ".b2p"):
        assert p in made or not (work / p).exists(), f"{p}/ was created by a failing command\n{shown}"
    after = snapshot(store)
    if after != before:
        changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
        pristine = store.parent / "pristine"
        now, then = logical(store, tmp_path), logical(pristine, tmp_path)
        shutil.rmtree(store)
        shutil.copytree(pristine, store)
        differ = sorted(k for k in now.keys() | then.keys() if now.get(k) != then.get(k))
        assert not differ, f"the store's content changed: {differ}\n{shown}"
        if case.known and case.known[0] == STORE_WRITE:
            pytest.xfail(f"known bug: {case.known[1]}; changed {changed}")
        pytest.fail(f"the store's bytes changed: {changed}\n{shown}")
