"""`b2p export`: a bible back to SillyTavern World Info or a NovelAI lorebook, the inverse of `b2p import`.

The lorebooks under tests/data/export/ were written for these tests to carry every field the real
formats have: SillyTavern's current World Info entry fields (with nulls for "use the global setting",
old comma-separated keys, CRLF text with blank ends, a decomposed "Zoë"), NovelAI v4 and v6 books
with categories (one disabled), context configs, bias groups and advanced conditions, and a V3
character card whose book entries carry every spec field and every SillyTavern extension.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from b2p.errors import BibleError
from cli import app
from ingest.export import export_bible
from ingest.importers import import_lorebook
from ingest.lorebook_formats import NaiBook, STBook

DATA = Path(__file__).parent / "data" / "export"
WORLD = DATA / "full_world.json"
SAMPLE = Path(__file__).resolve().parent.parent / "story_bibles" / "lunar_mining"


def load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def round_trip(src: Path, fmt: str, tmp_path: Path) -> tuple[dict, dict, Path]:
    """(the source, the export of a bible it was imported into, that bible)."""
    bible = tmp_path / "bible"
    import_lorebook(src, bible)
    out = tmp_path / f"out-{src.name}"
    export_bible(bible, fmt, out)
    return load(src), load(out), bible


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, (old, text[:400])
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


# ---------------------------------------------------------------- imported entries come back as they were


def test_sillytavern_round_trip_is_field_stable(tmp_path: Path) -> None:
    source, got, _ = round_trip(WORLD, "sillytavern", tmp_path)
    assert list(got["entries"]) == list(source["entries"])  # every uid, in the source's order
    for uid, original in source["entries"].items():
        restored = got["entries"][uid]
        for key, value in original.items():
            assert restored[key] == value, (uid, key)  # every field, value for value (content byte for byte)
        assert set(restored) == set(original), uid
    # The book's own fields come back once, from the import's record; originalData (SillyTavern's
    # cached copy of a card it converted) is the one field import drops, as documented.
    assert {k: v for k, v in got.items() if k != "entries"} == {"name": "Brine World", "extensions": {"exported_by": "hand", "version": 2}}
    STBook.model_validate(got, context={"written": True})


@pytest.mark.parametrize("version", [4, 6])
def test_novelai_round_trip_is_field_stable(tmp_path: Path, version: int) -> None:
    src = DATA / f"full_v{version}.lorebook"
    source, got, _ = round_trip(src, "novelai", tmp_path)
    assert got == source  # entries in order with every field, settings, categories, lorebookVersion
    assert list(got) == list(source) and all(list(a) == list(b) for a, b in zip(got["entries"], source["entries"]))
    NaiBook.model_validate(got, context={"written": True})


def test_writer_changes_win_and_nothing_else_moves(tmp_path: Path) -> None:
    bible = tmp_path / "bible"
    import_lorebook(WORLD, bible)
    mara = bible / "lore" / "captain-mara-voss.md"
    edit(mara, "name: Captain Mara Voss\n", "name: Mara Voss\n")
    edit(mara, "- Captain Voss\n", "- Captain Voss\n- the Captain\n")
    edit(mara, "case_sensitive: true\n", "always: true\n")
    edit(mara, "She never raises her voice.", "She has never once raised her voice.")
    edit(bible / "lore" / "the-tidewall.md", "always: true\n", "enabled: false\n")
    out = tmp_path / "world.json"
    export_bible(bible, "sillytavern", out)
    source, got = load(WORLD)["entries"], load(out)["entries"]

    m = got["0"]
    assert m["comment"] == "Mara Voss" and m["key"] == ["Mara Voss", "Mara", "Captain Voss", "the Captain"]
    assert m["constant"] is True and m["caseSensitive"] is False
    assert m["content"] == source["0"]["content"].replace("She never raises her voice.", "She has never once raised her voice.")
    changed = {"comment", "key", "constant", "caseSensitive", "content"}
    assert {k: v for k, v in m.items() if k not in changed} == {k: v for k, v in source["0"].items() if k not in changed}
    w = got["1"]
    assert (w["constant"], w["disable"]) == (False, True)
    assert {k: v for k, v in w.items() if k not in ("constant", "disable")} == {k: v for k, v in source["1"].items() if k not in ("constant", "disable")}
    for uid in ("2", "3", "7"):
        assert got[uid] == source[uid]


def test_novelai_writer_changes_map_back(tmp_path: Path) -> None:
    src = DATA / "full_v6.lorebook"
    bible = tmp_path / "bible"
    import_lorebook(src, bible)
    ilsa = bible / "lore" / "characters" / "ilsa-marr.md"
    edit(ilsa, "name: Ilsa Marr\n", "name: Ilsa Marr\ncase_sensitive: true\n")
    edit(bible / "lore" / "ashfall.md", "always: true\n", "")
    wren = bible / "lore" / "wren.md"
    assert "case_sensitive: true" in wren.read_text(encoding="utf-8")  # its /Wren/ keys are NovelAI's way to say so
    edit(wren, "case_sensitive: true\n", "")
    out = tmp_path / "out.lorebook"
    report = export_bible(bible, "novelai", out)
    source = {e["displayName"]: e for e in load(src)["entries"]}
    got = {e["displayName"]: e for e in load(out)["entries"]}
    assert got["Ilsa Marr"]["keys"] == ["/Ilsa/", "/harbourmaster/"]
    assert got["Ashfall"]["forceActivation"] is False
    assert got["Wren"]["keys"] == ["Wren", "Wren Hale"]
    for name in ("The Lantern Guild", "Drowned Gods", "Smugglers"):
        assert got[name] == source[name]
    assert report.restored == 6 and report.written == 0


def test_character_card_entries_are_converted_as_sillytavern_converts_a_cards_book(tmp_path: Path) -> None:
    bible = tmp_path / "bible"
    import_lorebook(DATA / "full_card_v3.json", bible)
    out = tmp_path / "world.json"
    report = export_bible(bible, "sillytavern", out)
    assert (report.restored, report.converted, report.written) == (0, 2, 0)
    card = {e["id"]: e for e in load(DATA / "full_card_v3.json")["data"]["character_book"]["entries"]}
    got = load(out)["entries"]
    keep, ext = got["10"], card[10]["extensions"]
    assert keep["key"] == ["Brinehold", "the keep"] and keep["keysecondary"] == ["storm"] and keep["comment"] == "Brinehold keep"
    assert keep["content"] == card[10]["content"] and keep["order"] == 10 and keep["position"] == 4  # extensions.position wins
    assert (keep["excludeRecursion"], keep["preventRecursion"], keep["delayUntilRecursion"]) == (True, True, 1)
    assert (keep["probability"], keep["depth"], keep["selectiveLogic"], keep["group"], keep["groupWeight"]) == (60, 3, 2, "places", 80)
    assert (keep["scanDepth"], keep["matchWholeWords"], keep["automationId"], keep["role"], keep["vectorized"]) == (5, False, "keep-qr", 1, True)
    assert (keep["sticky"], keep["cooldown"], keep["delay"], keep["triggers"], keep["ignoreBudget"]) == (1, 2, 3, ["impersonate"], True)
    assert keep["caseSensitive"] is False  # SillyTavern reads extensions.case_sensitive, not the spec's case_sensitive: true
    assert keep["displayIndex"] == 7 and keep["extensions"] == ext
    oath = got["11"]
    assert (oath["disable"], oath["constant"], oath["position"], oath["addMemo"], oath["comment"]) == (True, True, 1, False, "")
    STBook.model_validate(load(out), context={"written": True})


# ---------------------------------------------------------------- entries written in b2p


def test_b2p_entries_get_sensible_keys(tmp_path: Path) -> None:
    bible = tmp_path / "bible"
    (bible / "characters").mkdir(parents=True)
    (bible / "characters" / "wren.md").write_text("---\nname: Wren\naliases: [Wren Hale, the girl, wren]\ncase_sensitive: true\n---\nShe keeps the light.\n")
    (bible / "style.md").write_text("---\nname: Style\nalways: true\n---\nTerse.\n")
    (bible / "old.md").write_text("---\nname: Old Map\nenabled: false\n---\nLost.\n")
    st, nai = tmp_path / "w.json", tmp_path / "w.lorebook"
    export_bible(bible, "sillytavern", st)
    export_bible(bible, "novelai", nai)

    by_name = {e["comment"]: e for e in load(st)["entries"].values()}
    wren = by_name["Wren"]
    assert wren["key"] == ["Wren", "Wren Hale", "the girl"] and wren["caseSensitive"] is True and wren["matchWholeWords"] is True
    assert (by_name["Style"]["constant"], by_name["Style"]["caseSensitive"], by_name["Old Map"]["disable"]) == (True, False, True)
    assert [e["uid"] for e in load(st)["entries"].values()] == [0, 1, 2]

    book = load(nai)
    by_name = {e["displayName"]: e for e in book["entries"]}
    assert by_name["Wren"]["keys"] == ["/Wren/", "/Wren Hale/", "/the girl/"]  # NovelAI's case-sensitive keys
    assert by_name["Style"]["forceActivation"] is True and by_name["Old Map"]["enabled"] is False
    cats = {c["id"]: c["name"] for c in book["categories"]}
    assert cats[by_name["Wren"]["category"]] == "character" and by_name["Style"]["category"] == ""  # kind → category; lore → none


@pytest.mark.parametrize(("fmt", "name"), [("sillytavern", "w.json"), ("novelai", "w.lorebook")])
def test_export_import_export_is_byte_stable(tmp_path: Path, fmt: str, name: str) -> None:
    """b2p-written entries and imported ones together: the second export is the first, byte for byte."""
    bible = tmp_path / "bible"
    shutil.copytree(SAMPLE, bible, ignore=shutil.ignore_patterns("beats"))
    import_lorebook(WORLD if fmt == "sillytavern" else DATA / "full_v4.lorebook", bible)
    first = tmp_path / name
    export_bible(bible, fmt, first)
    again = tmp_path / "again"
    import_lorebook(first, again)
    second = tmp_path / f"second-{name}"
    report = export_bible(again, fmt, second)
    assert second.read_bytes() == first.read_bytes()
    assert report.restored == report.entries  # every entry came back from its record


def test_lorebook_fields_are_kept_once_not_per_entry(tmp_path: Path) -> None:
    """A 0.9 MB book used to become 35 MB: its top-level fields were copied into every entry."""
    world = {"name": "Big", "description": "d" * 300_000, "extensions": {"notes": ["n" * 1000] * 100},
             "entries": {str(i): {"uid": i, "key": [f"thing {i}"], "comment": f"Thing {i}", "content": f"Thing {i} is a thing."} for i in range(300)}}
    src = tmp_path / "big.json"
    src.write_text(json.dumps(world), encoding="utf-8")
    bible = tmp_path / "bible"
    import_lorebook(src, bible)
    written = sum(p.stat().st_size for p in bible.rglob("*") if p.is_file())
    assert written < 1.5 * src.stat().st_size
    out = tmp_path / "out.json"
    export_bible(bible, "sillytavern", out)
    got = load(out)
    assert got["description"] == world["description"] and got["extensions"] == world["extensions"] and len(got["entries"]) == 300


# ---------------------------------------------------------------- bad input


def test_a_hand_broken_imported_field_names_its_file_and_line(tmp_path: Path) -> None:
    bible = tmp_path / "bible"
    import_lorebook(WORLD, bible)
    mara = bible / "lore" / "captain-mara-voss.md"
    edit(mara, "  selectiveLogic: 3\n", "  selectiveLogic: [3]\n")
    line = mara.read_text(encoding="utf-8").splitlines().index("  selectiveLogic: [3]") + 1
    out = tmp_path / "world.json"
    with pytest.raises(BibleError) as info:
        export_bible(bible, "sillytavern", out)
    assert str(info.value) == (f"{mara}:{line}: 'imported.selectiveLogic' must be a number 0-3 (0 AND ANY, 1 NOT ALL, 2 NOT ANY, 3 AND ALL), not [3]")
    assert not out.exists()


def test_cli_export(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "lunar.json"
    got = runner.invoke(app, ["export", str(SAMPLE), "--format", "sillytavern", "-o", str(out), "--json"])
    assert got.exit_code == 0, got.output
    report = json.loads(got.stdout)
    assert report["entries"] == report["written"] == len(load(out)["entries"]) > 10
    got = runner.invoke(app, ["export", str(SAMPLE), "--format", "kobold", "-o", str(out)])
    assert got.exit_code == 2 and got.stderr.strip() == "--format 'kobold': b2p exports sillytavern or novelai"
    got = runner.invoke(app, ["export", str(SAMPLE), "--format", "novelai", "-o", str(tmp_path)])
    assert got.exit_code == 2 and got.stderr.strip() == f"{tmp_path}: is a folder; pass the file to write, e.g. -o world.json"


def test_a_lorebook_imported_before_records_existed_still_exports_its_fields(tmp_path: Path) -> None:
    """Earlier imports copied the book's fields into every entry (imported.book / book_category)."""
    bible = tmp_path / "bible"
    import_lorebook(DATA / "full_v6.lorebook", bible)
    source = load(DATA / "full_v6.lorebook")
    record = next(bible.rglob("*.book.yaml"))
    record.unlink()
    cats = {c["id"]: c for c in source["categories"]}
    for path in bible.rglob("*.md"):
        text = path.read_text(encoding="utf-8")
        cat = next((c for cid, c in cats.items() if cid in text), None)
        old = "  book:\n    lorebookVersion: 6\n    settings:\n      orderByKeyLocations: false\n"
        if cat:
            old += "  book_category:\n" + "".join(f"    {line}\n" for line in json.dumps(cat).splitlines())
        path.write_text(text.replace("  uid: ", old + "  uid: ", 1), encoding="utf-8")
    out = tmp_path / "out.lorebook"
    export_bible(bible, "novelai", out)
    got = load(out)
    assert got["lorebookVersion"] == 6 and got["settings"] == source["settings"]
    assert sorted(c["id"] for c in got["categories"]) == sorted(cats)
    assert sorted(got["entries"], key=lambda e: e["id"]) == source["entries"]  # every entry as it was (in file order: no record of theirs)


@pytest.mark.skipif(not hasattr(__import__("os"), "mkfifo"), reason="needs FIFOs")
def test_a_fifo_where_a_record_would_be_does_not_hang(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    bible = tmp_path / "bible"
    import_lorebook(WORLD, bible)
    os.mkfifo(bible / "lore" / "trap.book.yaml")
    code = ("import sys\nfrom pathlib import Path\nfrom b2p.errors import BibleError\nfrom ingest.export import export_bible\n"
            "try:\n    export_bible(Path(sys.argv[1]), 'sillytavern', Path(sys.argv[2]))\n"
            "except BibleError as err:\n    print(err, file=sys.stderr)\n    sys.exit(2)\n")
    proc = subprocess.run([sys.executable, "-c", code, str(bible), str(tmp_path / "o.json")], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and proc.stderr.strip() == f"{bible / 'lore' / 'trap.book.yaml'}:1: not a regular file; pass a YAML file"
    assert import_lorebook(WORLD, bible).imported == []  # import scans records too, and skips what it cannot read
