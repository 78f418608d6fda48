"""The one settings object: CLI flags > env ``B2P_*`` > ``b2p.toml`` > defaults.

Passed down explicitly; nothing reads the environment at import time.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from b2p.errors import ConfigError, did_you_mean
from b2p.userfiles import read_user_file

DEFAULT_EMBED_MODEL = "all-MiniLM-L6-v2"
CONFIG_FILE = "b2p.toml"


class Settings(BaseSettings):
    """Every knob b2p has. Each field can be set in ``b2p.toml``, as ``B2P_<FIELD>``, or by a flag."""

    model_config = SettingsConfigDict(env_prefix="B2P_", extra="forbid", validate_default=True)

    # store
    store: Path = Field(Path(".b2p"), description="Folder of the embedded Chroma store.")
    chroma_url: str | None = Field(None, description="http://HOST:PORT of a Chroma server; replaces the embedded store.")
    cache_dir: Path = Field(
        default_factory=lambda: Path.home() / ".cache" / "b2p",
        description="Where derived model files (the ONNX export used at query time) are kept.",
    )
    # ingest
    embed_model: str = Field(DEFAULT_EMBED_MODEL, description="sentence-transformers model name or path.")
    chunk_size: int = Field(200, ge=32, le=2048, description="Chunk size in embedding-model tokens.")
    chunk_overlap: int = Field(20, ge=0, le=512, description="Tokens shared by neighbouring chunks.")
    # retrieval
    budget: int = Field(1200, ge=0, description="Lore tokens allowed per beat (always > named > scene > similar).")
    threshold: float = Field(0.35, ge=-1.0, le=1.0, description="Cosine similarity a 'similar' entry must reach.")
    margin: float = Field(0.12, ge=0.0, le=1.0, description="How far a 'similar' entry must stand above the beat's background similarity.")
    top_k: int = Field(3, ge=0, le=100, description="At most this many 'similar' entries per beat.")
    scene_depth: int = Field(3, ge=0, le=50, description="How many earlier beats the scene cast is carried from.")
    # generation
    llm: Literal["local", "openai"] = Field("local", description="Model backend: the embedded GGUF or an OpenAI-compatible API.")
    model: str | None = Field(None, description="Model name for the openai backend (default gpt-4o-mini).")
    model_path: Path | None = Field(None, description="A GGUF file for the local backend (default: the embedded SmolLM2).")
    base_url: str | None = Field(None, description="OpenAI-compatible server URL (OpenRouter, Ollama, vLLM, llama.cpp).")
    api_key: SecretStr | None = Field(None, description="API key for --base-url servers (B2P_API_KEY).")
    mode: Literal["sequential", "oneshot", "interactive"] = Field("sequential", description="How the chapter is generated.")
    temperature: float = Field(0.8, ge=0.0, le=2.0, description="Sampling temperature.")
    seed: int | None = Field(None, description="Sampling seed, for repeatable drafts.")
    words_per_beat: int = Field(150, ge=10, le=5000, description="Target words for each beat's prose.")
    n: int = Field(1, ge=1, le=10, description="Candidates per beat; the judge keeps the best.")
    n_ctx: int = Field(4096, ge=512, description="Context window of the local model, in tokens.")
    n_threads: int | None = Field(None, ge=1, description="CPU threads for the local model (default: every usable core).")
    context_window: int | None = Field(None, ge=512, description="Context window of the API model (default: known table or 8192).")
    timeout: float = Field(120.0, gt=0, description="Seconds to wait for a model server's response.")
    retries: int = Field(3, ge=0, le=10, description="Retries with backoff on 429/5xx/connection errors.")
    stream: bool = Field(True, description="Stream prose to the terminal as it is written.")


def _read_toml(path: Path) -> dict[str, Any]:
    raw = read_user_file(path, "config file", "a TOML settings file with --config", error=ConfigError)
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: not valid TOML: {err}") from None
    fields = Settings.model_fields
    for key in data:
        if key not in fields:
            raise ConfigError(f"{path}: unknown setting '{key}'{did_you_mean(key, fields)}")
    return data


def _one_line(err: ValidationError, where: str) -> str:
    first = err.errors()[0]
    field = ".".join(str(p) for p in first["loc"]) or "settings"
    return f"{where}: {field}: {first['msg']}"


def load_settings(config: Path | None = None, **overrides: Any) -> Settings:
    """Build settings from ``config`` (or ``./b2p.toml`` if present), env and non-None ``overrides``."""
    path = config if config is not None else Path(CONFIG_FILE)
    file_values = _read_toml(path) if (config is not None or path.exists()) else {}
    try:
        from_env = Settings()
    except ValidationError as err:
        raise ConfigError(_one_line(err, "environment (B2P_*)")) from None
    env_values = {k: getattr(from_env, k) for k in from_env.model_fields_set}
    flags = {k: v for k, v in overrides.items() if v is not None}
    for key in flags:
        if key not in Settings.model_fields:
            raise ConfigError(f"unknown setting '{key}'{did_you_mean(key, Settings.model_fields)}")
    try:
        Settings.model_validate({**file_values})  # blame the file for its own bad values
    except ValidationError as err:
        raise ConfigError(_one_line(err, str(path))) from None
    try:
        return Settings(**{**file_values, **env_values, **flags})
    except ValidationError as err:
        raise ConfigError(_one_line(err, "option")) from None
