"""Imported lore is real lore: import a SillyTavern world, then `b2p lore` pulls its entries in by their keys."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from cli import app

DATA = Path(__file__).parent / "data" / "import"


def test_an_imported_world_is_retrieved_by_its_keys(tmp_path: Path) -> None:
    runner = CliRunner()
    bible = tmp_path / "harbour"
    got = runner.invoke(app, ["import", str(DATA / "harbour_world.json"), "--into", str(bible), "--json"])
    assert got.exit_code == 0, got.output
    report = json.loads(got.stdout)
    assert any(e["name"] == "Captain Mara Voss" for e in report["imported"])

    store = tmp_path / ".b2p"
    beat = "At dawn Captain Voss checks the rigging while the harbour sleeps."
    got = runner.invoke(app, ["lore", "--beat", beat, "--bible", str(bible), "--store", str(store), "--json"])
    assert got.exit_code == 0, got.output
    ledger = json.loads(got.stdout)
    picks = {p["name"]: p for p in ledger["beats"][0]["lore"]}
    assert picks["Captain Mara Voss"]["reason"] == "named"
    assert picks["Captain Mara Voss"]["match"] == "Captain Voss"
    # The disabled entry ("Old Map") never reaches a beat, even one that names its key.
    got = runner.invoke(app, ["lore", "--beat", "She unrolls the map on the deck.", "--bible", "harbour", "--store", str(store), "--json"])
    assert got.exit_code == 0, got.output
    names = {p["name"] for p in json.loads(got.stdout)["beats"][0]["lore"]}
    assert "Old Map" not in names
