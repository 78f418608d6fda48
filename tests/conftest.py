"""Shared fixtures. Server fixtures live in tests/plugins/*; each plugin module is owned by one suite."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest_plugins = ["tests.plugins.servers", "tests.plugins.stores"]

REPO = Path(__file__).resolve().parent.parent
BIBLES = REPO / "story_bibles"


@pytest.fixture(scope="session", autouse=True)
def _isolated_env(tmp_path_factory: pytest.TempPathFactory) -> None:
    """No test reads the developer's b2p settings or writes to their home cache."""
    for key in list(os.environ):
        if key.startswith("B2P_") or key in ("OPENAI_API_KEY", "OPENAI_BASE_URL"):
            del os.environ[key]
    # One ONNX export per test session (it takes ~10 s), outside the user's ~/.cache.
    os.environ["B2P_CACHE_DIR"] = str(tmp_path_factory.mktemp("b2p-cache"))
    os.environ["ANONYMIZED_TELEMETRY"] = "False"
    os.environ["HF_HUB_OFFLINE"] = "1"
