"""Session-wide ingested copies of the sample bibles (embedding is the slow part; do it once)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from b2p.settings import Settings, load_settings

BIBLES = Path(__file__).resolve().parents[2] / "story_bibles"


@pytest.fixture(scope="session")
def sample_store(tmp_path_factory: pytest.TempPathFactory, _isolated_env: None) -> Settings:
    """A store holding both sample bibles; treat it as read-only."""
    from ingest.pipeline import ingest_bible

    root = tmp_path_factory.mktemp("sample-store")
    settings = load_settings(None, store=root / ".b2p")
    for name in ("lunar_mining", "drowned_archive"):
        ingest_bible(BIBLES / name, settings)
    return settings


@pytest.fixture()
def bible_copy(tmp_path: Path):
    """Copy a sample bible into tmp_path so a test can edit it."""

    def make(name: str = "lunar_mining") -> Path:
        dst = tmp_path / name
        shutil.copytree(BIBLES / name, dst)
        return dst

    return make
