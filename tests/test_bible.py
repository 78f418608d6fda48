"""The story-bible format: every default and every error, as ``read_bible`` reports them.

Errors are one ``path:line: message`` per problem; the cases that could hang (symlink loops,
FIFOs) or need fewer privileges than root (an unreadable file) run in a subprocess with a timeout.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from b2p.errors import BibleError
from ingest.bible import read_bible

BIBLES = Path(__file__).resolve().parent.parent / "story_bibles"


def write(root: Path, rel: str, text: str | bytes) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def entry(name: str = "Jack Halloran", front: str = "", body: str = "A lunar miner who reads rock by feel.") -> str:
    return f"---\nname: {name}\n{front}---\n{body}\n"


def problems(root: Path) -> list[str]:
    """The problems read_bible reports, each checked to be a 'path:line: message' line."""
    with pytest.raises(BibleError) as info:
        read_bible(root)
    for line in info.value.problems:
        assert "\n" not in line
    return info.value.problems


def one_problem(root: Path, path: Path) -> tuple[int, str]:
    """The single problem reported for ``path``: (line, message)."""
    found = problems(root)
    assert len(found) == 1, found
    m = re.fullmatch(rf"{re.escape(str(path))}:(\d+): (.+)", found[0])
    assert m, f"not 'path:line: message' for {path}: {found[0]!r}"
    return int(m.group(1)), m.group(2)


def read_in_subprocess(root: Path, prefix: tuple[str, ...] = (), timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """read_bible in a child process, so a hang fails the test instead of freezing the run."""
    code = (
        "import sys\nfrom pathlib import Path\nfrom b2p.errors import BibleError\nfrom ingest.bible import read_bible\n"
        "try:\n    b = read_bible(Path(sys.argv[1]))\n"
        "except BibleError as err:\n    print(err, file=sys.stderr)\n    sys.exit(2)\n"
        "print(' '.join(sorted(e.id for e in b.entries)))\n"
    )
    return subprocess.run([*prefix, sys.executable, "-c", code, str(root)], capture_output=True, text=True, timeout=timeout)


# ---------------------------------------------------------------- defaults


def test_defaults_from_path(tmp_path: Path) -> None:
    write(tmp_path, "characters/jack.md", entry("Jack Halloran"))
    write(tmp_path, "places/outpost/meridian.md", entry("Outpost Meridian"))
    write(tmp_path, "factions/helix.md", entry("Helix-Lunar"))
    write(tmp_path, "magic/runes.md", entry("Runes"))  # no trailing s: kept as is
    write(tmp_path, "history.md", entry("The Long Night"))
    by_name = {e.name: e for e in read_bible(tmp_path).entries}

    jack = by_name["Jack Halloran"]
    assert (jack.kind, jack.id, jack.path) == ("character", "characters/jack", "characters/jack.md")
    assert jack.aliases == [] and jack.tags == []
    assert jack.always is False and jack.case_sensitive is False
    assert jack.text == "A lunar miner who reads rock by feel."
    # kind comes from the *top-level* folder; id keeps the whole relative path
    assert (by_name["Outpost Meridian"].kind, by_name["Outpost Meridian"].id) == ("place", "places/outpost/meridian")
    assert by_name["Helix-Lunar"].kind == "faction"
    assert by_name["Runes"].kind == "magic"
    assert (by_name["The Long Night"].kind, by_name["The Long Night"].id) == ("lore", "history")


def test_explicit_fields_win(tmp_path: Path) -> None:
    write(
        tmp_path,
        "characters/wren.md",
        "---\nname: '  Wren  '\naliases: [Little Bird, 'The Wren']\nkind: narrator\ntags: [pov, young]\n"
        "always: true\ncase_sensitive: true\nid: wren-main\n---\n\n  She keeps the ledgers.  \n\n",
    )
    (e,) = read_bible(tmp_path).entries
    assert e.name == "Wren"
    assert e.aliases == ["Little Bird", "The Wren"]
    assert (e.kind, e.id, e.path) == ("narrator", "wren-main", "characters/wren.md")
    assert e.tags == ["pov", "young"]
    assert e.always is True and e.case_sensitive is True
    assert e.text == "She keeps the ledgers."


def test_null_lists_are_empty_and_crlf_bom_are_normalised(tmp_path: Path) -> None:
    write(tmp_path, "items/lamp.md", b"\xef\xbb\xbf---\r\nname: Lamp\r\naliases:\r\ntags:\r\n---\r\nIt glows.\r\nSoftly.\r\n")
    (e,) = read_bible(tmp_path).entries
    assert (e.name, e.aliases, e.tags, e.text) == ("Lamp", [], [], "It glows.\nSoftly.")


def test_sample_bible_parses(tmp_path: Path) -> None:
    bible = read_bible(BIBLES / "lunar_mining")
    assert bible.name == "lunar_mining"
    assert len(bible.entries) == 17
    assert {e.kind for e in bible.entries} == {"character", "place", "faction", "item", "note"}
    always = sorted(e.name for e in bible.entries if e.always)
    assert always == ["Genre", "Style"]
    assert not any(e.path.startswith("beats/") for e in bible.entries)


# ---------------------------------------------------------------- bible.yaml


def test_bible_yaml_fields(tmp_path: Path) -> None:
    write(tmp_path, "characters/jack.md", entry())
    write(tmp_path, "bible.yaml", "title: The Lantern\npov: close third\ntense: past\nstyle: terse\n")
    meta = read_bible(tmp_path).meta
    assert (meta.title, meta.pov, meta.tense, meta.style) == ("The Lantern", "close third", "past", "terse")


def test_bible_yaml_is_optional(tmp_path: Path) -> None:
    write(tmp_path, "characters/jack.md", entry())
    meta = read_bible(tmp_path).meta
    assert (meta.title, meta.pov, meta.tense, meta.style) == (None, None, None, None)


def test_bible_yaml_unknown_key(tmp_path: Path) -> None:
    write(tmp_path, "characters/jack.md", entry())
    path = write(tmp_path, "bible.yaml", "title: The Lantern\ntence: past\n")
    line, msg = one_problem(tmp_path, path)
    assert line == 2
    assert "unknown field 'tence'" in msg and 'did you mean "tense"' in msg


def test_bible_yaml_bad_yaml_and_types(tmp_path: Path) -> None:
    write(tmp_path, "characters/jack.md", entry())
    path = write(tmp_path, "bible.yaml", "title: The Lantern\npov: [close, third\n")
    line, msg = one_problem(tmp_path, path)
    assert line >= 2 and "bad YAML" in msg
    path.write_text("title: The Lantern\ntense: 3\n")
    line, msg = one_problem(tmp_path, path)
    assert line == 2 and "'tense' must be a string" in msg
    path.write_text("- just\n- a list\n")
    line, msg = one_problem(tmp_path, path)
    assert line == 1 and "title" in msg


# ---------------------------------------------------------------- entry errors


def test_malformed_yaml_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "characters/jack.md", "---\nname: Jack\ntags: [miner]\nkind: a: b\n---\nBody.\n")
    line, msg = one_problem(tmp_path, path)
    assert line == 4
    assert msg.startswith("bad YAML in front matter")


def test_front_matter_never_closed(tmp_path: Path) -> None:
    path = write(tmp_path, "characters/jack.md", "---\nname: Jack\naliases: [Dusty]\n\nJack mines the rim.\n")
    line, msg = one_problem(tmp_path, path)
    assert line == 1 and "never closed" in msg


def test_no_front_matter(tmp_path: Path) -> None:
    path = write(tmp_path, "characters/jack.md", "Jack mines the rim.\n")
    line, msg = one_problem(tmp_path, path)
    assert line == 1 and "front matter" in msg


def test_front_matter_not_a_mapping(tmp_path: Path) -> None:
    path = write(tmp_path, "characters/jack.md", "---\n- name\n- Jack\n---\nBody.\n")
    line, msg = one_problem(tmp_path, path)
    assert line == 2 and "key: value" in msg


@pytest.mark.parametrize(
    ("front", "line"),
    [
        ("aliases: [Jack]\n", 1),  # no name at all
        ("name:\n", 2),
        ("name: ''\n", 2),
        ("aliases: [Jack]\nname: '   '\n", 3),
    ],
    ids=["absent", "null", "empty", "blank"],
)
def test_missing_or_empty_name(tmp_path: Path, front: str, line: int) -> None:
    path = write(tmp_path, "characters/jack.md", f"---\n{front}---\nBody.\n")
    got, msg = one_problem(tmp_path, path)
    assert got == line
    assert "missing 'name'" in msg


@pytest.mark.parametrize(
    ("front", "line", "expect"),
    [
        ("aliases: Jack\n", 3, "e.g. aliases: ['Jack']"),
        ("tags: 5\n", 3, "'tags' must be a list"),
        ("aliases: [Jack, '']\n", 3, "'aliases' must be a list of non-empty strings"),
        ("aliases: [{a: b}]\n", 3, "'aliases' must be a list"),
        ("always: 'maybe'\n", 3, "'always' must be true or false"),
        ("case_sensitive: 1\n", 3, "'case_sensitive' must be true or false"),
        ("kind: [a]\n", 3, "'kind' must be a non-empty string"),
        ("id: ''\n", 3, "'id' must be a non-empty string"),
    ],
)
def test_wrong_types(tmp_path: Path, front: str, line: int, expect: str) -> None:
    path = write(tmp_path, "characters/jack.md", entry("Jack", front))
    got, msg = one_problem(tmp_path, path)
    assert got == line
    assert expect in msg


def test_name_of_wrong_type(tmp_path: Path) -> None:
    path = write(tmp_path, "characters/jack.md", "---\nname: [Jack, Dusty]\n---\nBody.\n")
    line, msg = one_problem(tmp_path, path)
    assert line == 2 and "'name' must be a string" in msg


@pytest.mark.parametrize(
    ("key", "suggest"),
    [("alias", "aliases"), ("case-sensitive", "case_sensitive"), ("Tags", "tags"), ("alwyas", "always")],
)
def test_unknown_field_did_you_mean(tmp_path: Path, key: str, suggest: str) -> None:
    path = write(tmp_path, "characters/jack.md", entry("Jack", f"kind: miner\n{key}: [x]\n"))
    line, msg = one_problem(tmp_path, path)
    assert line == 4
    assert f"unknown field '{key}'" in msg and f'did you mean "{suggest}"' in msg


def test_unknown_field_without_close_match(tmp_path: Path) -> None:
    path = write(tmp_path, "characters/jack.md", entry("Jack", "zzqx: 1\n"))
    line, msg = one_problem(tmp_path, path)
    assert line == 3 and msg == "unknown field 'zzqx'"


def test_duplicate_names_name_both_files(tmp_path: Path) -> None:
    first = write(tmp_path, "characters/jack.md", entry("Jack Halloran"))
    second = write(tmp_path, "characters/jack2.md", "---\naliases: [Dusty]\nname: jack halloran\n---\nAnother Jack.\n")
    line, msg = one_problem(tmp_path, second)
    assert line == 3  # the line holding the second file's name
    assert str(first) in msg and "unique" in msg


def test_duplicate_ids(tmp_path: Path) -> None:
    write(tmp_path, "characters/jack.md", entry("Jack"))
    second = write(tmp_path, "characters/other.md", entry("Other", "id: characters/jack\n"))
    found = problems(tmp_path)
    assert len(found) == 1
    assert found[0].startswith(f"{second}:") and str(tmp_path / "characters/jack.md") in found[0]


def test_shared_alias_is_a_warning_naming_both_files(tmp_path: Path) -> None:
    a = write(tmp_path, "characters/brandt.md", entry("Ilse Brandt", "aliases: [the Chief]\n"))
    b = write(tmp_path, "characters/castellan.md", entry("Rourke Castellan", "aliases: ['The chief', Rourke]\n"))
    bible = read_bible(tmp_path)
    assert len(bible.entries) == 2
    assert len(bible.warnings) == 1
    assert str(a) in bible.warnings[0] and str(b) in bible.warnings[0]
    assert "the chief" in bible.warnings[0].lower()


def test_alias_equal_to_another_entrys_name_is_a_warning(tmp_path: Path) -> None:
    write(tmp_path, "characters/selene.md", entry("Selene"))
    write(tmp_path, "places/selene_base.md", entry("Selene Base", "aliases: [Selene]\n"))
    assert len(read_bible(tmp_path).warnings) == 1


def test_non_utf8(tmp_path: Path) -> None:
    path = write(tmp_path, "characters/jack.md", "---\nname: Jack\n---\nFirst line.\nCaf\xe9 au lait.\n".encode("latin-1"))
    line, msg = one_problem(tmp_path, path)
    assert line == 5
    assert "not UTF-8" in msg and "0xe9" in msg


def test_binary_file(tmp_path: Path) -> None:
    path = write(tmp_path, "items/picture.md", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    line, msg = one_problem(tmp_path, path)
    assert line >= 1 and "binary" in msg


@pytest.mark.parametrize("body", ["", "\n\n", "   \n\t\n"], ids=["none", "newlines", "whitespace"])
def test_empty_body(tmp_path: Path, body: str) -> None:
    path = write(tmp_path, "characters/jack.md", f"---\nname: Jack\n---\n{body}")
    line, msg = one_problem(tmp_path, path)
    assert line == 4 and "empty body" in msg


def test_twenty_megabyte_entry(tmp_path: Path) -> None:
    path = write(tmp_path, "notes/huge.md", "---\nname: Huge\n---\n" + ("The regolith is grey. " * 1_000_000))
    assert path.stat().st_size > 20_000_000
    started = time.perf_counter()
    line, msg = one_problem(tmp_path, path)
    assert time.perf_counter() - started < 5  # refused from its size, not after parsing 20 MB
    assert line == 1 and "MB" in msg and "split" in msg


def test_every_problem_reported_at_once(tmp_path: Path) -> None:
    write(tmp_path, "characters/ok.md", entry("Fine"))
    bad = [
        write(tmp_path, "characters/a.md", "---\nname: A\n"),
        write(tmp_path, "characters/b.md", entry("B", "alias: [x]\n")),
        write(tmp_path, "places/c.md", b"\xff\xfe"),
        write(tmp_path, "bible.yaml", "titel: x\n"),
    ]
    found = problems(tmp_path)
    assert len(found) == 4
    for path in bad:
        assert sum(p.startswith(f"{path}:") for p in found) == 1
    assert all(re.match(r"^/.+:\d+: \S", p) for p in found)


# ---------------------------------------------------------------- the folder


def test_empty_bible_folder(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (found,) = problems(tmp_path / "empty")
    assert found.startswith(str(tmp_path / "empty")) and "no entries" in found


def test_folder_with_only_ignored_files(tmp_path: Path) -> None:
    write(tmp_path, "notes.txt", "just notes")
    write(tmp_path, "beats/chapter1.md", entry("A beat sheet, not lore"))
    (found,) = problems(tmp_path)
    assert "no entries" in found


def test_path_that_is_a_file(tmp_path: Path) -> None:
    path = write(tmp_path, "characters/jack.md", entry())
    (found,) = problems(path)
    assert found.startswith(str(path)) and "is a file" in found


def test_missing_folder(tmp_path: Path) -> None:
    (found,) = problems(tmp_path / "nope")
    assert found.startswith(str(tmp_path / "nope")) and "no such folder" in found


def test_beats_folder_is_never_ingested(tmp_path: Path) -> None:
    write(tmp_path, "characters/jack.md", entry())
    write(tmp_path, "beats/chapter1.txt", "Jack finds the artifact.\n")
    write(tmp_path, "beats/chapter1.md", entry("Chapter One"))
    write(tmp_path, "beats/broken.md", b"\x00\xff not even text")
    assert [e.name for e in read_bible(tmp_path).entries] == ["Jack Halloran"]


def test_non_markdown_files_are_ignored(tmp_path: Path) -> None:
    write(tmp_path, "characters/jack.md", entry())
    write(tmp_path, "characters/jack.txt", "---\nbroken: [\n")
    write(tmp_path, "characters/portrait.png", b"\x89PNG\x00\x00binary")
    write(tmp_path, "characters/jack.md.bak", b"\xff\xfe")
    write(tmp_path, "places/map.yaml", "not: [closed\n")
    write(tmp_path, "README", "no extension")
    assert [e.name for e in read_bible(tmp_path).entries] == ["Jack Halloran"]


def test_symlink_loops_do_not_hang(tmp_path: Path) -> None:
    root = tmp_path / "bible"
    write(root, "characters/jack.md", entry())
    (root / "characters" / "loop").symlink_to(root, target_is_directory=True)  # a folder loop
    (root / "places").mkdir()
    (root / "places" / "self").symlink_to("../places", target_is_directory=True)
    proc = read_in_subprocess(root, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["characters/jack"]

    # a file link loop (a.md → b.md → a.md) is an unreadable entry: reported, not hung on
    (root / "places" / "a.md").symlink_to("b.md")
    (root / "places" / "b.md").symlink_to("a.md")
    proc = read_in_subprocess(root, timeout=60)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 2
    for line, name in zip(sorted(lines), ("a.md", "b.md"), strict=True):
        assert line.startswith(f"{root / 'places' / name}:1: cannot read file")


def test_symlinked_file_inside_the_bible_is_read(tmp_path: Path) -> None:
    write(tmp_path, "shared/jack.txt", entry())  # not *.md: only the link is an entry
    (tmp_path / "characters").mkdir()
    (tmp_path / "characters" / "jack.md").symlink_to("../shared/jack.txt")
    (e,) = read_bible(tmp_path).entries
    assert (e.name, e.kind, e.id) == ("Jack Halloran", "character", "characters/jack")


def test_symlink_pointing_outside_the_bible_is_refused_unless_allowed(tmp_path: Path) -> None:
    outside = write(tmp_path, "shared/jack.md", entry())
    root = tmp_path / "bible"
    (root / "characters").mkdir(parents=True)
    link = root / "characters" / "jack.md"
    link.symlink_to(outside)
    line, msg = one_problem(root, link)
    assert line == 1 and msg == f"a link to {outside}, outside the bible; copy the file in, or set 'allow_outside_links: true' in bible.yaml"

    write(root, "bible.yaml", "title: The Lantern\nallow_outside_links: true\n")
    bible = read_bible(root)
    assert [e.id for e in bible.entries] == ["characters/jack"] and bible.meta.title == "The Lantern"
    write(root, "bible.yaml", "allow_outside_links: yes please\n")
    assert [p.split(": ", 1)[0] for p in problems(root)] == [f"{root / 'bible.yaml'}:1", f"{link}:1"]  # and the link is refused


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_fifo_and_device_entries_do_not_hang(tmp_path: Path) -> None:
    root = tmp_path / "bible"
    write(root, "characters/jack.md", entry())
    os.mkfifo(root / "characters" / "pipe.md")  # reading it would block forever
    (root / "characters" / "zero.md").symlink_to("/dev/zero")  # reading it would never end
    proc = read_in_subprocess(root, timeout=60)
    assert proc.returncode == 2
    lines = sorted(proc.stderr.strip().splitlines())
    assert len(lines) == 2
    assert lines[0].startswith(f"{root / 'characters' / 'pipe.md'}:1: ")
    assert lines[1].startswith(f"{root / 'characters' / 'zero.md'}:1: ")
    assert all("not a regular file" in line for line in lines)


def test_dangling_symlink_is_an_unreadable_entry(tmp_path: Path) -> None:
    write(tmp_path, "characters/jack.md", entry())
    link = tmp_path / "characters" / "gone.md"
    link.symlink_to(tmp_path / "nowhere.md")
    line, msg = one_problem(tmp_path, link)
    assert line == 1 and msg.startswith("cannot read file")


def _setpriv() -> list[str] | None:
    """A prefix that runs a command without the capabilities that let root read any file."""
    exe = shutil.which("setpriv")
    if exe is None:
        return None
    return [exe, "--bounding-set=-dac_override,-dac_read_search", "--"]


def test_unreadable_file(tmp_path: Path) -> None:
    root = tmp_path / "bible"
    write(root, "characters/jack.md", entry())
    secret = write(root, "characters/secret.md", entry("Secret"))
    secret.chmod(0)
    try:
        prefix: tuple[str, ...] = ()
        if os.geteuid() == 0:
            # root reads mode-000 files; drop the capabilities that allow it (tmp_path stays traversable: 0700, owned by us)
            setpriv = _setpriv()
            if setpriv is None:
                pytest.skip("running as root and setpriv is missing: root can read a mode-000 file")
            probe = subprocess.run([*setpriv, "cat", str(secret)], capture_output=True)
            if probe.returncode == 0:
                pytest.skip("running as root and dropping CAP_DAC_OVERRIDE did not make the file unreadable")
            prefix = tuple(setpriv)
        proc = read_in_subprocess(root, prefix=prefix, timeout=60)
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert proc.stderr.strip() == f"{secret}:1: cannot read file: Permission denied"
    finally:
        secret.chmod(0o644)


# ---------------------------------------------------------------- lines from the parser, hostile YAML


def test_lines_come_from_the_parser_not_a_text_search(tmp_path: Path) -> None:
    """A nested 'name:' under imported (as an imported card entry has) is not the entry's name line."""
    write(tmp_path, "characters/jack.md", entry("Jack Halloran"))
    front = "imported:\n  format: character-card\n  name: Jack Halloran\n  extensions: {}\nname: Jack Halloran\n"
    path = write(tmp_path, "lore/jack-card.md", f"---\n{front}---\nBody.\n")
    line, msg = one_problem(tmp_path, path)
    assert line == 6 and msg.startswith("name 'Jack Halloran' is already used by")
    path.write_text("---\nimported:\n  kind: x\nname: Jack\nkind: [a]\n---\nBody.\n")
    line, msg = one_problem(tmp_path, path)
    assert line == 5 and "'kind' must be a non-empty string" in msg


def _laughs(levels: int = 9) -> str:
    rows = ["  a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for i in range(1, levels):
        prev, cur = chr(96 + i), chr(97 + i)
        rows.append(f"  {cur}: &{cur} [{', '.join(['*' + prev] * 9)}]")
    return "imported:\n" + "\n".join(rows) + "\n"


def test_alias_expansion_is_refused_in_one_line_and_fast(tmp_path: Path) -> None:
    path = write(tmp_path, "lore/bomb.md", entry("Bomb", _laughs()))
    started = time.perf_counter()
    line, msg = one_problem(tmp_path, path)
    assert time.perf_counter() - started < 5  # it used to pass the parser in 2 ms, then run out of memory
    assert line == 9 and msg == "aliases (*e) expand this YAML past 500,000 values; write the values out"
    # a few aliases that stay small are still fine
    write(tmp_path, "lore/bomb.md", entry("Bomb", "imported:\n  a: &x [1, 2]\n  b: *x\n"))
    (e,) = read_bible(tmp_path).entries
    assert e.imported == {"a": [1, 2], "b": [1, 2]}


@pytest.mark.parametrize(
    ("front", "line", "expect"),
    [
        ("imported:\n  deep: " + "[" * 600 + "]" * 600 + "\n", 4, "nested more than 100 levels deep; flatten it"),
        ("imported:\n" + "".join("  " * (i + 1) + f"k{i}:\n" for i in range(150)) + "  " * 151 + "v: 1\n", 103,
         "nested more than 100 levels deep; flatten it"),
        ("imported:\n  loop: &l [1, *l]\n", 4, "the alias *l refers to itself; write the value out"),
        ("imported:\n  order: " + "7" * 5000 + "\n", 4, "bad YAML in front matter: a number longer than 4,300 digits"),
        ("imported:\n  blob: !!binary aGVsbG8=\n", 4, "bad YAML in front matter: the tag !!binary is not allowed"),
        ("imported:\n  s: !!set {a, b}\n", 4, "bad YAML in front matter: the tag !!set is not allowed"),
    ],
    ids=["flow-600-deep", "block-150-deep", "self-alias", "5000-digits", "binary", "set"],
)
def test_hostile_front_matter_is_one_line(tmp_path: Path, front: str, line: int, expect: str) -> None:
    path = write(tmp_path, "lore/x.md", entry("X", front))
    got, msg = one_problem(tmp_path, path)
    assert (got, msg[: len(expect)]) == (line, expect)


def test_dates_stay_text_so_any_front_matter_can_be_stored(tmp_path: Path) -> None:
    write(tmp_path, "lore/x.md", entry("X", "imported:\n  lastUpdated: 2024-03-01\n  at: 2024-03-01 10:00:00\n"))
    (e,) = read_bible(tmp_path).entries
    assert e.imported == {"lastUpdated": "2024-03-01", "at": "2024-03-01 10:00:00"}


def test_names_and_aliases_are_nfc_so_one_spelling_matches(tmp_path: Path) -> None:
    decomposed, composed = "Zoe\u0308", "Zo\u00eb"
    write(tmp_path, "characters/zoe.md", entry(decomposed, f"aliases: [{decomposed} Marr]\ntags: [Caf\u0065\u0301]\n"))
    (e,) = read_bible(tmp_path).entries
    assert (e.name, e.aliases, e.tags) == (composed, [f"{composed} Marr"], ["Caf\u00e9"])
    write(tmp_path, "characters/zoe2.md", entry(composed))
    _, msg = one_problem(tmp_path, tmp_path / "characters" / "zoe2.md")
    assert msg.startswith(f"name '{composed}' is already used")


@pytest.mark.parametrize("name", ["'\u200b\u200d'", "'\u3164'", "'\ufeff \u00ad'"], ids=["zero-width", "hangul-filler", "bom-soft-hyphen"])
def test_names_of_only_invisible_characters_are_refused(tmp_path: Path, name: str) -> None:
    path = write(tmp_path, "characters/ghost.md", entry(name))
    line, msg = one_problem(tmp_path, path)
    assert line == 2 and msg.startswith("'name' has only invisible characters (U+")
    path.write_text(entry("Ghost", f"aliases: [Boo, {name}]\n"), encoding="utf-8")
    line, msg = one_problem(tmp_path, path)
    assert line == 3 and msg.startswith("'aliases' must be a list of non-empty strings")


@pytest.mark.parametrize(("in_bible", "in_beat"), [("Zoe\u0308", "Zo\u00eb"), ("Zo\u00eb", "Zoe\u0308")], ids=["decomposed-name", "decomposed-beat"])
def test_a_name_typed_either_way_matches_a_beat_typed_either_way(tmp_path: Path, in_bible: str, in_beat: str) -> None:
    pytest.importorskip("ahocorasick")
    from b2p.beats import parse_beats
    from b2p.matcher import NameMatcher

    write(tmp_path, "characters/zoe.md", entry(in_bible, "aliases: [Marr]\n"))
    matcher = NameMatcher(read_bible(tmp_path).entries)
    (beat,) = parse_beats(f"- {in_beat} rows out to the wreck.\n")
    assert [m.entry_ids for m in matcher.find(beat)] == [("characters/zoe",)]
