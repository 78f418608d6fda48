"""`b2p import`: SillyTavern World Info, character-card lorebooks (JSON and PNG), NovelAI lorebooks."""

from __future__ import annotations

import base64
import json
import shutil
import struct
import zlib
from pathlib import Path

import pytest

from b2p.errors import BibleError
from ingest.bible import parse_entry, read_bible
from ingest.importers import ImportReport, detect_format, import_lorebook
from ingest.lorebooks import PROVENANCE
from ingest.yamldoc import load_yaml

DATA = Path(__file__).parent / "data" / "import"
ST = DATA / "harbour_world.json"
CARD_V2 = DATA / "mara_card_v2.json"
CARD_V3 = DATA / "mara_card_v3.json"
NAI = DATA / "brine_sea.lorebook"
B2P_KEYS = ("format", "source", "uid", "body_edges", "body_crlf")


# ---------------------------------------------------------------- helpers


def _chunk(ctype: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + ctype + data + struct.pack(">I", zlib.crc32(ctype + data))


def make_png(*text_chunks: bytes) -> bytes:
    """A valid 1×1 grey PNG with the given extra chunks before the image data."""
    ihdr = _chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0))
    idat = _chunk(b"IDAT", zlib.compress(b"\x00\x80"))
    return b"\x89PNG\r\n\x1a\n" + ihdr + b"".join(text_chunks) + idat + _chunk(b"IEND", b"")


def text_chunk(key: str, card: dict | bytes) -> bytes:
    payload = card if isinstance(card, bytes) else base64.b64encode(json.dumps(card).encode("utf-8"))
    return _chunk(b"tEXt", key.encode("latin-1") + b"\0" + payload)


def itxt_chunk(key: str, card: dict, compressed: bool = False) -> bytes:
    text = base64.b64encode(json.dumps(card).encode("utf-8"))
    if compressed:
        text = zlib.compress(text)
    return _chunk(b"iTXt", key.encode() + b"\0" + (b"\x01\x00" if compressed else b"\x00\x00") + b"\0\0" + text)


def load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def entries_by_name(into: Path) -> dict:
    """Every imported file parsed by the bible reader, by name."""
    return {e.name: e for e in (parse_entry(p, into) for p in sorted(into.rglob("*.md")))}


def record(into: Path, rel: str) -> dict:
    """The lorebook's own fields, as the import kept them (once, in lore/<source>.book.yaml)."""
    path = into / rel
    return load_yaml(path.read_text(encoding="utf-8"), str(path)).data


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def assert_verbatim(imported: dict, original: dict, body_key: str) -> None:
    """Every source field but the body is under `imported:` unchanged; b2p adds only its provenance keys."""
    kept = {k: v for k, v in original.items() if k != body_key}
    assert {k: imported[k] for k in kept if k in imported} == kept
    assert set(imported) - set(kept) <= set(B2P_KEYS) <= set(PROVENANCE)
    assert list(k for k in imported if k in kept) == list(kept)  # original field order too


@pytest.fixture
def card_png(tmp_path: Path) -> Path:
    """A V3 card PNG that also carries a V2 copy under 'chara' (as V3 writers do)."""
    path = tmp_path / "mara.png"
    path.write_bytes(make_png(text_chunk("chara", load(CARD_V2)), text_chunk("ccv3", load(CARD_V3))))
    return path


# ---------------------------------------------------------------- detection


def test_detect_format_from_content(tmp_path: Path, card_png: Path) -> None:
    assert detect_format(ST) == "sillytavern"
    assert detect_format(CARD_V2) == "character-card"
    assert detect_format(CARD_V3) == "character-card"
    assert detect_format(NAI) == "novelai"
    assert detect_format(card_png) == "character-card"
    # The name is not what decides: a NovelAI book saved as .json is still NovelAI.
    renamed = tmp_path / "book.json"
    shutil.copy(NAI, renamed)
    assert detect_format(renamed) == "novelai"


# ---------------------------------------------------------------- SillyTavern


def test_sillytavern_entries_become_bible_files(tmp_path: Path) -> None:
    into = tmp_path / "bible"
    report = import_lorebook(ST, into)
    assert isinstance(report, ImportReport) and report.format == "sillytavern" and not report.dry_run
    got = entries_by_name(into)
    assert set(got) == {"Captain Mara Voss", "The Tidewall", "Dragons", "Old Map", "Saltglass", "The Tidewall (2)"}

    mara = got["Captain Mara Voss"]
    assert mara.aliases == ["Mara", "Captain Voss"]  # the key equal to the name is not repeated
    assert mara.case_sensitive is True and mara.always is False and mara.enabled is True
    assert mara.text == "Mara Voss captains the *Gull's Debt*. She lost two fingers to a winch.\n\nShe never raises her voice."
    assert mara.path == "lore/captain-mara-voss.md" and mara.kind == "lore"

    wall = got["The Tidewall"]
    assert wall.always is True and wall.case_sensitive is False  # caseSensitive null = global default = off
    assert got["Old Map"].enabled is False  # disable: true → kept out of retrieval
    assert got["Saltglass"].aliases == ["salt glass"]  # no comment: named after its first key
    assert got["Dragons"].aliases == ["wyrm"]  # the regex key is not a usable alias
    assert got["The Tidewall (2)"].path == "lore/the-tidewall-2.md"

    assert [(s.name, s.reason) for s in report.skipped] == [("Placeholder", "empty content")]
    assert {(i.name, i.file, i.always, i.enabled) for i in report.imported} == {
        (e.name, e.path, e.always, e.enabled) for e in got.values()
    }


def test_sillytavern_fields_round_trip_verbatim(tmp_path: Path) -> None:
    source = load(ST)
    import_lorebook(ST, tmp_path)
    by_uid = {e.imported["uid"]: e for e in entries_by_name(tmp_path).values()}
    for uid, original in source["entries"].items():
        if int(uid) == 4:
            continue  # the empty entry is skipped
        imp = by_uid[int(uid)].imported
        assert imp["format"] == "sillytavern" and imp["source"] == ST.name
        assert_verbatim(imp, original, "content")
    book = record(tmp_path, "lore/harbour-world-json.book.yaml")
    assert book == {"format": "sillytavern", "source": ST.name,
                    "book": {"name": "Harbour World", "description": "Lore for the Brinehold chapters.", "extensions": {"exported_by": "hand"}},
                    "entries_at": 3, "entry_order": [int(uid) for uid in source["entries"]]}
    # A value holding a '---' line must not end the front matter early.
    assert by_uid[0].imported["extensions"]["note"] == "line one\n---\nline three"


def test_sillytavern_warnings_name_the_entry(tmp_path: Path) -> None:
    report = import_lorebook(ST, tmp_path)
    warned = {}
    for w in report.warnings:
        warned.setdefault(w.name, []).append(w.message)
    assert any("regex key '/drag(on|ons)/i'" in m for m in warned["Dragons"])
    assert any("probability 40%" in m for m in warned["Dragons"])
    assert not any("secondary" in m for m in warned["Dragons"])  # selective: false → SillyTavern ignores them
    assert any("secondary keys ['ship', 'deck']" in m and "AND ALL" in m for m in warned["Captain Mara Voss"])
    assert any("NOT ANY" in m for m in warned["The Tidewall (2)"])
    assert any("already used" in m for m in warned["The Tidewall (2)"])
    assert "Saltglass" not in warned and "The Tidewall" not in warned
    # probability < 100 with useProbability: false is not a warning
    assert not any("probability" in m for m in warned["The Tidewall (2)"])


# ---------------------------------------------------------------- character cards


def test_card_v2_json(tmp_path: Path) -> None:
    report = import_lorebook(CARD_V2, tmp_path)
    got = entries_by_name(tmp_path)
    assert set(got) == {"Brinehold", "Oath of Salt"}
    keep, oath = got["Brinehold"], got["Oath of Salt"]
    assert keep.aliases == ["the keep"] and keep.always is False and keep.enabled is True and keep.case_sensitive is False
    assert oath.aliases == ["the Oath"] and oath.always is True and oath.enabled is False and oath.case_sensitive is True
    assert oath.text == "Every captain swears the Oath of Salt: no crew left in the water."
    assert [(s.name, s.reason) for s in report.skipped] == [("Empty gull", "empty content")]

    originals = {e["id"]: e for e in load(CARD_V2)["data"]["character_book"]["entries"]}
    for e in got.values():
        assert_verbatim(e.imported, originals[e.imported["uid"]], "content")
    book = record(tmp_path, report.record)
    assert book["character"] == "Mara Voss" and book["book"]["token_budget"] == 512 and "entries" not in book["book"]
    messages = {(w.name, w.message.split(" ")[0]) for w in report.warnings}
    assert ("Brinehold", "secondary") in messages and ("Oath of Salt", "probability") in messages


def test_card_v3_png_prefers_ccv3_chunk(tmp_path: Path, card_png: Path) -> None:
    into = tmp_path / "bible"
    report = import_lorebook(card_png, into)
    got = entries_by_name(into)
    assert set(got) == {"Gull's Debt", "Krakens"}  # the V3 book, not the V2 copy in 'chara'
    ship = got["Gull's Debt"]
    assert ship.aliases == ["the Debt"] and ship.case_sensitive is True
    assert ship.imported["comment"] == "the ship" and ship.imported["extensions"] == {"position": 1, "depth": 4, "group": "ships"}
    # use_regex: true makes every key a regex: no aliases, and one warning per key.
    assert got["Krakens"].aliases == []
    krakens = [w.message for w in report.warnings if w.name == "Krakens"]
    assert sum("regex key" in m for m in krakens) == 2 and any("no plain activation keys" in m for m in krakens)


@pytest.mark.parametrize("chunk", ["itxt", "itxt-compressed", "chara-only"])
def test_card_png_chunk_variants(tmp_path: Path, chunk: str) -> None:
    card = load(CARD_V2) if chunk == "chara-only" else load(CARD_V3)
    made = {
        "itxt": itxt_chunk("ccv3", card),
        "itxt-compressed": itxt_chunk("ccv3", card, compressed=True),
        "chara-only": text_chunk("chara", card),
    }[chunk]
    png = tmp_path / "card.png"
    png.write_bytes(make_png(made))
    report = import_lorebook(png, tmp_path / "bible")
    assert len(report.imported) == 2 and report.format == "character-card"


# ---------------------------------------------------------------- NovelAI


def test_novelai_lorebook(tmp_path: Path) -> None:
    report = import_lorebook(NAI, tmp_path)
    got = entries_by_name(tmp_path)
    assert set(got) == {"Ilsa Marr", "The Lantern Guild", "Ashfall", "Drowned Gods", "Smugglers"}
    ilsa = got["Ilsa Marr"]
    assert ilsa.path == "lore/characters/ilsa-marr.md" and ilsa.tags == ["Characters"] and ilsa.kind == "lore"
    assert ilsa.aliases == ["Ilsa", "harbourmaster"]
    assert ilsa.imported["category"] == "c0000000-0000-4000-8000-00000000000a"
    assert got["Ashfall"].always is True  # forceActivation
    assert got["Smugglers"].enabled is False
    gods = got["Drowned Gods"]
    assert gods.enabled is False and gods.path == "lore/old-religion/drowned-gods.md"  # its category is disabled
    assert got["The Lantern Guild"].aliases == ["lamplighters"]

    source = load(NAI)
    originals = {e["id"]: e for e in source["entries"]}
    for e in got.values():
        assert_verbatim(e.imported, originals[e.imported["uid"]], "text")
    book = record(tmp_path, report.record)["book"]
    assert book == {k: v for k, v in source.items() if k != "entries"}  # lorebookVersion, settings, categories
    assert got["Ilsa Marr"].imported["contextConfig"]["suffix"] == "\n"

    warned = {(w.name, w.message.split(" ")[0]) for w in report.warnings}
    assert ("The Lantern Guild", "regex") in warned and ("Drowned Gods", "its") in warned


# ---------------------------------------------------------------- the whole bible


def test_imported_folder_is_a_valid_bible_and_keys_match_beats(tmp_path: Path, card_png: Path) -> None:
    for src in (ST, CARD_V2, card_png, NAI):
        import_lorebook(src, tmp_path)
    bible = read_bible(tmp_path)
    names = [e.name for e in bible.entries]
    assert len(names) == 6 + 2 + 2 + 5 and len(set(n.casefold() for n in names)) == len(names)

    ahocorasick = pytest.importorskip("ahocorasick")
    assert ahocorasick
    from b2p.matcher import NameMatcher

    ids = {e.id: e.name for e in bible.entries}
    matcher = NameMatcher(bible.entries)
    found = {ids[i] for m in matcher.find("The harbourmaster watches Mara climb the wall of Brinehold.") for i in m.entry_ids}
    assert {"Ilsa Marr", "Captain Mara Voss", "The Tidewall", "Brinehold"} <= found


def test_dry_run_writes_nothing(tmp_path: Path) -> None:
    into = tmp_path / "bible"
    report = import_lorebook(ST, into, dry_run=True)
    assert report.dry_run is True and len(report.imported) == 6 and report.warnings
    assert not into.exists()


def test_existing_files_are_never_overwritten(tmp_path: Path) -> None:
    into = tmp_path / "bible"
    (into / "lore").mkdir(parents=True)
    mine = into / "lore" / "the-tidewall.md"
    mine.write_text("---\nname: The Tidewall\n---\n\nMy own notes on the wall.\n", encoding="utf-8")

    first = import_lorebook(ST, into)
    assert mine.read_text(encoding="utf-8").endswith("My own notes on the wall.\n")
    files = {i.name: i.file for i in first.imported}
    assert files["The Tidewall (2)"] == "lore/the-tidewall-2.md"
    assert files["The Tidewall (3)"] == "lore/the-tidewall-3.md"
    read_bible(into)  # names stay unique

    # Importing the same file again recognises every entry and changes nothing.
    before = snapshot(into)
    again = import_lorebook(ST, into)
    assert again.imported == [] and snapshot(into) == before
    reasons = {s.name: s.reason for s in again.skipped}
    assert reasons["Captain Mara Voss"] == "already imported as lore/captain-mara-voss.md; use --force to overwrite it"
    assert reasons["Placeholder"] == "empty content"

    # --force rewrites the earlier import in place (a hand edit is replaced), never the writer's own file.
    edited = into / "lore" / "captain-mara-voss.md"
    edited.write_text(edited.read_text(encoding="utf-8").replace("She never raises her voice.", "EDITED"), encoding="utf-8")
    forced = import_lorebook(ST, into, force=True)
    assert len(forced.imported) == 6 and {i.file for i in forced.imported} == set(files.values())
    assert "She never raises her voice." in edited.read_text(encoding="utf-8")
    assert mine.read_text(encoding="utf-8").endswith("My own notes on the wall.\n")
    assert snapshot(into).keys() == before.keys()  # no duplicates, no temp files left
    assert {e.name for e in read_bible(into).entries} == {"The Tidewall", *files}


# ---------------------------------------------------------------- malformed input


def _bad_inputs(tmp_path: Path) -> dict[str, tuple[Path, str | None, str]]:
    def write(name: str, content: bytes | str) -> Path:
        p = tmp_path / name
        p.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
        return p

    v1 = {"name": "Old", "description": "", "personality": "", "scenario": "", "first_mes": "hi", "mes_example": ""}
    bad_keys = load(ST)
    bad_keys["entries"]["0"]["key"] = [{"not": "a string"}]
    png = make_png(text_chunk("chara", load(CARD_V2)))
    return {
        "not json": (write("a.json", "{entries: oops"), None, "not valid JSON (line 1, column 2"),
        "empty": (write("empty.json", ""), None, "is empty"),
        "binary": (write("b.json", b"\xff\xfe\x00junk"), None, "not UTF-8"),
        "json list": (write("list.json", "[1, 2]"), None, "not a lorebook b2p can read"),
        "no entries": (write("x.json", '{"name": "World"}'), None, "not a lorebook b2p can read"),
        "entries wrong": (write("w.json", '{"entries": {"0": "text"}}'), None, "entry '0' is not an object"),
        "bad key type": (write("k.json", json.dumps(bad_keys)), None, "'key' must be a list of strings"),
        "bad flag": (write("f.json", '{"entries": {"0": {"key": ["a"], "content": "x", "constant": "yes"}}}'), None, "'constant' must be true or false"),
        "png no card": (write("plain.png", make_png()), None, "PNG has no character card"),
        "png bad base64": (write("b64.png", make_png(text_chunk("chara", b"%%%not base64%%%"))), None, "not base64"),
        "png truncated": (write("t.png", png[:60]), None, "truncated PNG"),
        "card v1": (write("v1.json", json.dumps(v1)), None, "has no lorebook"),
        "card no book": (write("nobook.json", json.dumps({"spec": "chara_card_v2", "data": {"name": "Mara"}})), None, "character card 'Mara' has no lorebook"),
        "unknown fmt": (ST, "kobold", "unknown format 'kobold'"),
        "wrong fmt": (ST, "novelai", "NovelAI lorebook needs an 'entries' list (the file looks like sillytavern"),
        "png as st": (write("c.png", png), "sillytavern", "a PNG can only hold a character card"),
        "missing": (tmp_path / "nope.json", None, "file not found"),
    }


@pytest.mark.parametrize(
    "case",
    ["not json", "empty", "binary", "json list", "no entries", "entries wrong", "bad key type", "bad flag",
     "png no card", "png bad base64", "png truncated", "card v1", "card no book", "unknown fmt", "wrong fmt",
     "png as st", "missing"],
)
def test_malformed_input_one_clear_line_and_nothing_written(tmp_path: Path, case: str) -> None:
    path, fmt, expected = _bad_inputs(tmp_path)[case]
    into = tmp_path / "bible"
    with pytest.raises(BibleError) as info:
        import_lorebook(path, into, fmt=fmt)
    message = str(info.value)
    assert len(info.value.problems) == 1 and "\n" not in message
    assert message.startswith(f"{path}: ") and expected in message, message
    assert not into.exists()


def test_malformed_entry_late_in_file_writes_nothing(tmp_path: Path) -> None:
    """Entries before the broken one are not written either: the whole file is checked first."""
    data = load(NAI)
    data["entries"][-1]["text"] = ["not", "text"]
    src = tmp_path / "broken.lorebook"
    src.write_text(json.dumps(data), encoding="utf-8")
    into = tmp_path / "bible"
    with pytest.raises(BibleError, match=r"entry 5: 'text' must be text"):
        import_lorebook(src, into)
    assert not into.exists()


def test_into_must_be_a_folder(tmp_path: Path) -> None:
    target = tmp_path / "file.md"
    target.write_text("x", encoding="utf-8")
    with pytest.raises(BibleError, match="is a file"):
        import_lorebook(ST, target)
    assert target.read_text(encoding="utf-8") == "x"


def test_entry_without_title_or_keys_gets_a_traceable_name(tmp_path: Path) -> None:
    src = tmp_path / "w.json"
    src.write_text(json.dumps({"entries": {"9": {"uid": 9, "key": [], "comment": "", "content": "An unnamed note."}}}), encoding="utf-8")
    report = import_lorebook(src, tmp_path / "bible")
    assert [(i.name, i.file) for i in report.imported] == [("Entry 9", "lore/entry-9.md")]
    assert [w.message.split(":")[0] for w in report.warnings] == ["no title and no keys"]


def test_cli_shows_lorebook_text_and_never_obeys_it(tmp_path: Path) -> None:
    """An entry title holding a terminal escape (here: retitle the window) is shown as text."""
    from typer.testing import CliRunner

    from cli import app

    src = tmp_path / "w.json"
    title = "Mara\x1b]0;pwned\x07 Voss"
    src.write_text(json.dumps({"entries": {"0": {"uid": 0, "key": ["Mara"], "comment": title, "content": "A captain."}}}), encoding="utf-8")
    got = CliRunner().invoke(app, ["import", str(src), "--into", str(tmp_path / "bible")])
    assert got.exit_code == 0, got.output
    assert "\x1b" not in got.stdout and "\x07" not in got.stdout
    assert "Mara\\x1b]0;pwned\\x07 Voss" in got.stdout
    assert "lore/w-json.book.yaml: the lorebook's own fields" in got.stdout
