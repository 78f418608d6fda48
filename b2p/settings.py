"""The one settings object: CLI flags > env ``B2P_*`` > ``b2p.toml`` > defaults.

``Settings`` holds what every stage shares; each model backend declares its own options (``LLM.Options``
in ``b2p/llm*.py``). The writer never sees the split: a backend's option is a flat key in ``b2p.toml``,
an env var ``B2P_<OPTION>`` and a flag like any other setting, and ``Settings`` hands it to every
registered backend that declares it (``settings.backend_options(name)``).

``b2p.toml`` is read by pydantic-settings' TOML source, through ``read_user_file`` (regular files
only: a FIFO or a device is refused, never read). ``load_settings`` stacks the layers itself rather
than in one source chain so that a bad value is blamed on the layer that gave it.

Passed down explicitly; nothing reads the environment at import time.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, PrivateAttr, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from b2p.errors import ConfigError, did_you_mean
from b2p.llm import BackendOptions, backends
from b2p.userfiles import read_user_file

DEFAULT_EMBED_MODEL = "all-MiniLM-L6-v2"
CONFIG_FILE = "b2p.toml"
ENV_PREFIX = "B2P_"


@dataclass(frozen=True)
class Origin:
    """Where a setting's value came from. ``chosen``: the user named it (a flag, an env var, a file
    given with ``--config``, or code); False for a ``b2p.toml`` merely found in the current folder,
    which came with whatever project the user is in."""

    layer: Literal["default", "file", "env", "flag"]
    where: str = ""  # the file, or the env var
    chosen: bool = True


class Settings(BaseSettings):
    """Every knob b2p shares. Each field can be set in ``b2p.toml``, as ``B2P_<FIELD>``, or by a flag;
    so can each backend's options (``backend_options``)."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid", validate_default=True)

    # store
    store: Path = Field(Path(".b2p"), description="Folder of the embedded Chroma store. Unset, a bible folder's store is "
                        "an existing ./.b2p that holds it, else <bible>/.b2p (ingest/project.py); a bible name's is ./.b2p.")
    chroma_url: str | None = Field(None, description="http://HOST:PORT of a Chroma server; replaces the embedded store.")
    chroma_timeout: float = Field(60.0, gt=0, le=3600, allow_inf_nan=False,
                                  description="Seconds to wait for the Chroma server to answer any one call.")
    cache_dir: Path = Field(
        default_factory=lambda: Path.home() / ".cache" / "b2p",
        description="Where derived model files (the ONNX export used at query time) are kept.",
    )
    # ingest
    embed_model: str = Field(DEFAULT_EMBED_MODEL, description="sentence-transformers model name or path.")
    chunk_size: int = Field(200, ge=32, le=2048, description="Chunk size in embedding-model tokens.")
    chunk_overlap: int = Field(20, ge=0, le=512, description="Tokens shared by neighbouring chunks.")
    # retrieval
    budget: int = Field(1200, ge=0, description="Lore tokens allowed per beat (writer > always > named > scene > model > similar).")
    threshold: float = Field(0.35, ge=-1.0, le=1.0, allow_inf_nan=False, description="Cosine similarity a 'similar' entry must reach.")
    margin: float = Field(0.12, ge=0.0, le=1.0, allow_inf_nan=False, description="How far a 'similar' entry must stand above the beat's background similarity.")
    resolver: Literal["rules", "model"] = Field("rules", description="Who chooses the lore beside the names: b2p's rules, or the "
                                                "chat model (llm/model) reading each beat with the bible's catalogue (one request a beat, cached).")
    top_k: int = Field(3, ge=0, le=100, description="At most this many 'similar' entries per beat.")
    scene_depth: int = Field(3, ge=0, le=50, description="How many earlier beats the scene cast is carried from.")
    max_beat_chars: int = Field(10_000, ge=100, le=10_000_000, description="A beat longer than this many characters is refused (a beat is one plot point, not a chapter).")
    # generation
    llm: str = Field("local", description="Model backend: 'local' (the embedded GGUF), 'openai' (an OpenAI-compatible API), or another registered one.")
    model: str | None = Field(None, description="Model name for the openai backend (default gpt-4o-mini).")
    mode: Literal["sequential", "oneshot", "interactive"] = Field("sequential", description="How the chapter is generated.")
    temperature: float = Field(0.8, ge=0.0, le=2.0, allow_inf_nan=False, description="Sampling temperature.")
    seed: int | None = Field(None, description="Sampling seed, for repeatable drafts.")
    words_per_beat: int = Field(150, ge=10, le=5000, description="Target words for each beat's prose.")
    n: int = Field(1, ge=1, le=10, description="Candidates per beat; the judge keeps the best.")
    stream: bool = Field(True, description="Stream prose to the terminal as it is written.")
    prompt_shape: Literal["auto", "full", "short"] = Field(
        "auto", description="'full': lore, outline and story so far; 'short': the beat, its lore's leads, the last paragraph and "
        "a one-line story so far; 'auto': short for a small model (under 1B parameters or a context under 4096 tokens).")
    redrafts: int = Field(2, ge=0, le=10, description="Times a draft that copies earlier beats or misses its beat is drafted again.")
    coverage_floor: float = Field(0.2, ge=0.0, le=1.0, description="A draft using less than this share of its beat's words misses it.")

    _backends: dict[str, BackendOptions] = PrivateAttr(default_factory=dict)
    _origins: dict[str, Origin] = PrivateAttr(default_factory=dict)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings, BackendEnvSource(settings_cls)

    @model_validator(mode="wrap")
    @classmethod
    def _split_backend_options(cls, data: Any, handler: Any) -> Settings:
        """Flat backend options (``n_ctx = 8192``) go to every backend that declares them; the rest is ours."""
        if not isinstance(data, dict):  # already Settings: its options come with it
            return handler(data)
        known = backends()
        mine = option_names(known)
        flat = {k: v for k, v in data.items() if k in mine}
        settings: Settings = handler({k: v for k, v in data.items() if k not in mine})
        # A nested ValidationError keeps its own location (the flat key), so messages name what the user wrote.
        settings._backends = {
            name: backend.Options.model_validate({k: v for k, v in flat.items() if k in backend.Options.model_fields})
            for name, backend in known.items()
        }
        return settings

    @field_validator("llm")
    @classmethod
    def _known_backend(cls, value: str) -> str:
        names = list(backends())
        if value not in names:
            listed = ", ".join(f"'{n}'" for n in names[:-1]) + f" or '{names[-1]}'" if len(names) > 1 else f"'{names[0]}'"
            raise PydanticCustomError("literal_error", "Input should be {expected}", {"expected": listed})
        return value

    def origin(self, name: str) -> Origin:
        """Where setting ``name`` (shared or a backend's option) came from; values given in code, and
        defaults, count as chosen."""
        return self._origins.get(name, Origin("default"))

    def backend_options(self, name: str | None = None) -> BackendOptions:
        """The options of backend ``name`` (default: the chosen one, ``llm``)."""
        name = name or self.llm
        if name not in self._backends:  # a backend defined after these settings were made
            self._backends[name] = backends()[name].Options()
        return self._backends[name]


def option_names(known: dict[str, Any] | None = None) -> set[str]:
    """Every backend option's name (flat keys that belong to a backend rather than to ``Settings``)."""
    return {f for backend in (known or backends()).values() for f in backend.Options.model_fields}


def setting_names() -> list[str]:
    """Every name a setting can have: the shared fields, then each backend's options."""
    return [*Settings.model_fields, *sorted(option_names() - set(Settings.model_fields))]


class BackendEnvSource(PydanticBaseSettingsSource):
    """``B2P_<OPTION>`` for every backend option (pydantic's env source only knows ``Settings``' own
    fields). Case-insensitive, like that source."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # not used: __call__ reads the options directly

    def __call__(self) -> dict[str, Any]:
        env = {k.upper(): v for k, v in os.environ.items()}
        wanted = {f"{ENV_PREFIX}{name.upper()}": name for name in option_names()}
        return {name: env[var] for var, name in wanted.items() if var in env}


class TomlFile(TomlConfigSettingsSource):
    """pydantic-settings' TOML source for ``b2p.toml``, reading only regular files (one clear line for a
    folder, FIFO, device or unreadable file, never a hang) and refusing unknown keys with a did-you-mean."""

    def __init__(self, settings_cls: type[BaseSettings], path: Path) -> None:
        self.path = path
        # Read (and refuse) up front: the base class would silently skip a path that is not a regular file.
        self._raw = read_user_file(path, "config file", "a TOML settings file with --config", error=ConfigError)
        super().__init__(settings_cls, toml_file=path)

    def _read_file(self, file_path: Path) -> dict[str, Any]:
        try:
            data = tomllib.loads(self._raw.decode("utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
            raise ConfigError(f"{self.path}: not valid TOML: {err}") from None
        names = setting_names()
        for key, value in data.items():
            if key in backends() and isinstance(value, dict):
                example = next(iter(value), "timeout")
                raise ConfigError(f"{self.path}: unknown setting '{key}': a backend's options are top-level keys "
                                  f"({example} = …), not a [{key}] table")
            if key not in names:
                raise ConfigError(f"{self.path}: unknown setting '{key}'{did_you_mean(key, names)}")
        return data


def _env_values() -> dict[str, Any]:
    return {**EnvSettingsSource(Settings)(), **BackendEnvSource(Settings)()}


def _one_line(err: ValidationError, where: str) -> str:
    first = err.errors()[0]
    field = ".".join(str(p) for p in first["loc"]) or "settings"
    return f"{where}: {field}: {first['msg']}"


def _check_names(keys: Iterable[str]) -> None:
    names = setting_names()
    for key in keys:
        if key not in names:
            raise ConfigError(f"unknown setting '{key}'{did_you_mean(key, names)}")


def load_settings(config: Path | None = None, **overrides: Any) -> Settings:
    """Build settings from ``config`` (or ``./b2p.toml`` if present), env and non-None ``overrides``
    (flags; a backend's options too, by their flat names). Raises ConfigError naming the layer at fault."""
    path = config if config is not None else Path(CONFIG_FILE)
    file_values = TomlFile(Settings, path)() if (config is not None or path.exists()) else {}
    try:
        Settings()  # the environment alone
    except ValidationError as err:
        raise ConfigError(_one_line(err, "environment (B2P_*)")) from None
    flags = {k: v for k, v in overrides.items() if v is not None}
    _check_names(flags)
    try:
        Settings(**file_values)  # blame the file for its own bad values
    except ValidationError as err:
        raise ConfigError(_one_line(err, str(path))) from None
    env = _env_values()
    try:
        settings = Settings(**{**file_values, **env, **flags})
    except ValidationError as err:
        raise ConfigError(_one_line(err, "option")) from None
    settings._origins = {
        **{k: Origin("file", str(path), chosen=config is not None) for k in file_values},
        **{k: Origin("env", f"{ENV_PREFIX}{k.upper()}") for k in env},
        **{k: Origin("flag", "--" + k.replace("_", "-")) for k in flags},
    }
    return settings
