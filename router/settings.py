"""The one typed settings class, and how it is loaded.

Precedence, highest first: explicit arguments (CLI flags) > environment ``FRUGAL_*`` (nested with
``__``, e.g. ``FRUGAL_LARGE__MODEL``) > the YAML file (``--config`` / ``FRUGAL_CONFIG``, default
``config/frugal.yaml`` when present) > the defaults below. Everything is validated when loaded, and
unsafe combinations are refused with a message that says what to change.
"""

from __future__ import annotations

import contextvars
import ipaddress
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from backends.config import TierConfig
from classifiers.config import ClassifierConfig
from router.core.errors import FrugalError
from router.energy.config import EnergyConfig

DEFAULT_CONFIG_PATH = Path("config/frugal.yaml")
FRUGAL_MODELS = {"frugal-auto": None, "frugal-search": "search", "frugal-small": "small", "frugal-large": "large"}

_yaml_path: contextvars.ContextVar[Path | None] = contextvars.ContextVar("frugal_yaml_path", default=None)


class SettingsError(FrugalError):
    """The configuration is invalid or unsafe; the message says what to change."""


class LimitsConfig(BaseModel):
    """Request limits, answered in OpenAI's error format when exceeded."""

    model_config = ConfigDict(extra="forbid")

    max_body_bytes: int = Field(default=2_000_000, ge=1024)
    max_messages: int = Field(default=256, ge=1)
    max_message_chars: int = Field(default=200_000, ge=1)
    max_tokens_cap: int = Field(default=4096, ge=1, description="largest max_tokens a client may ask for")
    max_in_flight: int = Field(default=256, ge=1, description="chat requests worked on at once; more get 429")
    tier_queue: int = Field(
        default=256, ge=0, description="most requests that may wait for a busy tier (fewer when the tier's recent "
        "service times say they would not get a slot within tier_max_wait_s); more get 429")
    tier_max_wait_s: float = Field(default=5.0, ge=0, description="longest wait for a busy tier's slot")
    overflow: Literal["escalate", "reject"] = Field(
        default="escalate", description="a saturated tier in automatic routing: pass on to the next tier, or 429")
    header_timeout_s: float = Field(
        default=10.0, gt=0, le=3600, description="a request head (request line and headers) not complete this long "
        "after the connection opened, or after its first byte on a kept-alive connection: the connection is closed")
    body_timeout_s: float = Field(
        default=30.0, gt=0, le=3600, description="a request body not complete this long after its head: 408 "
        "and the connection is closed")
    degraded_max_tokens: int = Field(
        default=128, ge=1, description="a degraded answer (the small tier in place of an unavailable large one) "
        "generates at most this many tokens, whatever max_tokens asks for")
    degraded_timeout_s: float = Field(
        default=30.0, gt=0, description="a degraded answer's time budget; the small tier's own timeout_s when lower")


class LedgerConfig(BaseModel):
    """How long an answered request may wait for its ledger row (``router.ledger.spool``)."""

    model_config = ConfigDict(extra="forbid")

    write_timeout_s: float = Field(
        default=2.0, gt=0, le=60, description="longest wait for the database to commit an answered request's row; "
        "after it the row goes to the fsync'd spool (or, with ledger_spool off, the request gets 503)")


class PolicyConfig(BaseModel):
    """What routing optimises once the thresholds have picked a tier (``router.core.policy.OBJECTIVES``)."""

    model_config = ConfigDict(extra="forbid")

    objective: Literal["energy", "local-first"] = Field(
        default="energy", description="energy: the cheaper sufficient tier, so a request the small tier is expected "
        "to answer with more Wh than the large model goes large; local-first: stay local unless insufficient")
    sticky_conversations: bool = Field(
        default=True, description="a new turn never goes to a tier below the one the conversation's previous answer "
        "needed (router.stickiness); false: every turn is routed on its own")
    answer_memory: int = Field(default=100_000, ge=0, description="answers remembered per process for stickiness "
                               "(a 16-byte hash and the tier each; 0: rely on re-classifying the earlier question)")


class AuthConfig(BaseModel):
    """Keys (the admin key guards /admin, client keys /v1 when set), trusted proxies, and what needs a key."""

    model_config = ConfigDict(extra="forbid")

    admin_key: SecretStr | None = None
    client_key_hashes: list[str] = Field(default_factory=list)
    client_keys: dict[str, str] = Field(
        default_factory=dict, description="named client keys: a name (team or app) -> the key's sha256 hex digest; "
        "the name is what the ledger records and what `frugal report --client` selects")
    trusted_proxies: list[str] = Field(
        default_factory=list, description="reverse proxies (IP addresses or CIDR networks) whose forwarding headers "
        "are believed when deciding whether a keyless admin request comes from this machine")
    metrics_require_key: bool = Field(
        default=False, description="GET /metrics needs a client key or the admin key (off: open, as in LiteLLM)")
    docs_require_key: bool = Field(
        default=False, description="/openapi.json, /docs and /redoc need a client key or the admin key (off: open)")

    @model_validator(mode="after")
    def _check_trusted_proxies(self) -> AuthConfig:
        self.proxy_networks()
        return self

    def proxy_networks(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        """``trusted_proxies`` as networks; a ValueError names the first entry that is neither an IP nor a CIDR."""
        networks = []
        for entry in self.trusted_proxies:
            try:
                networks.append(ipaddress.ip_network(entry.strip(), strict=False))
            except ValueError:
                raise ValueError(f"auth.trusted_proxies: {entry!r} is not an IP address or a CIDR network "
                                 "(e.g. 127.0.0.1, ::1, 127.0.0.0/8)") from None
        return networks


#: The built-in defaults that ``TierConfig``'s own field defaults do not give; equal to config/frugal.yaml, so that
#: Frugal behaves the same from any directory. Whatever the sources hold is merged over them key by key
#: (``Settings._over_built_in_defaults``), as pydantic-settings merges the environment over the YAML file.
BUILT_IN_DEFAULTS: dict[str, Any] = {
    "aliases": {"gpt-4o-mini": "frugal-auto", "gpt-3.5-turbo": "frugal-auto"},
    "search": {"backend": "tantivy", "timeout_s": 10.0, "max_concurrency": 8},
    "small": {"backend": "llamacpp", "timeout_s": 120.0, "max_concurrency": 1},
    "large": {"backend": "litellm", "timeout_s": 120.0, "max_concurrency": 16},
}


def _default_search() -> TierConfig:
    return TierConfig(**BUILT_IN_DEFAULTS["search"])


def _default_small() -> TierConfig:
    return TierConfig(**BUILT_IN_DEFAULTS["small"])


def _default_large() -> TierConfig:
    return TierConfig(**BUILT_IN_DEFAULTS["large"])


def _default_aliases() -> dict[str, str]:
    return dict(BUILT_IN_DEFAULTS["aliases"])


def merged(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``over`` merged into ``base`` key by key: nested mappings merge, anything else in ``over`` wins."""
    result = dict(base)
    for key, value in over.items():
        below = result.get(key)
        result[key] = merged(below, value) if isinstance(below, Mapping) and isinstance(value, Mapping) else value
    return result


class Settings(BaseSettings):
    """Everything Frugal can be configured with."""

    model_config = SettingsConfigDict(
        env_prefix="FRUGAL_", env_nested_delimiter="__", extra="forbid", validate_default=True
    )

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    workers: int = Field(
        default=1, ge=1, le=64, description="server processes sharing the port (frugal serve); each loads its own "
        "tiers and keeps its own limits and /metrics (docs/RELIABILITY.md, Scale-out)")
    data_dir: Path = Path("data")
    access_log: bool = Field(
        default=False, description="one uvicorn log line per HTTP request (logger uvicorn.access); off by default: "
        "the ledger already holds a row per chat request, and the line costs more than any other step of Frugal's "
        "own per-request work (docs/BENCHMARKS.md)")
    config_path: Path | None = Field(default=None, exclude=True)
    auth: AuthConfig = Field(default_factory=AuthConfig)
    aliases: dict[str, str] = Field(default_factory=_default_aliases, description="extra model names -> frugal-* names")
    max_escalations: int = Field(default=2, ge=0, le=2)
    search_escalates_to: Literal["small", "large"] = Field(
        default="large", description="where a search answer below the gate goes, with its passages (docs/SEARCH.md)")
    on_large_unavailable: Literal["degrade", "error"] = "degrade"
    ledger_url: str | None = Field(default=None, description="SQLAlchemy URL; default SQLite in data_dir")
    store_text: bool = Field(default=False, description="store prompt and answer text in the ledger")
    ledger_spool: bool = Field(
        default=True, description="when the ledger database is down, keep rows in an fsync'd file in data_dir "
        "and replay them later (off: answer 503)")
    ledger: LedgerConfig = Field(default_factory=LedgerConfig)
    demo_index: bool = Field(default=True, description="build the demo index when no index exists")
    thresholds: dict[str, float] = Field(default_factory=dict, description="initial threshold overrides")
    policy: PolicyConfig = Field(default_factory=PolicyConfig)
    thresholds_poll_s: float = Field(
        default=2.0, gt=0, le=3600, description="seconds between checks for threshold changes made elsewhere"
    )
    search: TierConfig = Field(default_factory=_default_search)
    small: TierConfig = Field(default_factory=_default_small)
    large: TierConfig = Field(default_factory=_default_large)
    classifier: ClassifierConfig = Field(default_factory=ClassifierConfig)
    energy: EnergyConfig = Field(default_factory=EnergyConfig)
    limits: LimitsConfig = Field(default_factory=LimitsConfig)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Arguments > env > YAML > defaults."""
        path = _yaml_path.get()
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings, _AdminKeyAlias(settings_cls)]
        if path is not None:
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=path))
        return tuple(sources)

    @model_validator(mode="before")
    @classmethod
    def _over_built_in_defaults(cls, data: Any) -> Any:
        """A partial section (``FRUGAL_LARGE__MODEL`` alone, or YAML ``large: {model: x}``) keeps the other defaults."""
        return merged(BUILT_IN_DEFAULTS, data) if isinstance(data, Mapping) else data

    @model_validator(mode="after")
    def _check(self) -> Settings:
        for alias, target in self.aliases.items():
            if target not in FRUGAL_MODELS:
                raise ValueError(
                    f"aliases.{alias} points to {target!r}; valid targets: {', '.join(FRUGAL_MODELS)}"
                )
            if alias in FRUGAL_MODELS:
                raise ValueError(f"aliases: {alias!r} is a built-in model name and cannot be re-aliased")
        return self

    def tier_configs(self) -> dict[str, TierConfig]:
        """The three tiers' backend configurations by tier name."""
        return {"search": self.search, "small": self.small, "large": self.large}

    def resolved_ledger_url(self) -> str:
        """The ledger URL, defaulting to SQLite in the data directory."""
        return self.ledger_url or f"sqlite:///{(self.data_dir / 'ledger.sqlite3').resolve()}"

    def resolved_energy(self) -> EnergyConfig:
        """The energy settings, with the counterfactual defaulting to the configured litellm large model."""
        large = self.large
        if self.energy.counterfactual_model is None and large.enabled and large.backend == "litellm" and large.model:
            return self.energy.model_copy(update={"counterfactual_model": large.model})
        return self.energy

    def index_dir(self) -> Path:
        """Where the search index lives."""
        configured = self.search.options.get("index_dir")
        return Path(configured) if configured else self.data_dir / "index"

    def check_safe_bind(self) -> None:
        """Refuse to serve the admin API on a non-loopback interface without an admin key."""
        if self.auth.admin_key is None and not is_loopback(self.host):
            raise SettingsError(
                f"refusing to serve on {self.host} without an admin key: the admin API would be open to the network. "
                "Set FRUGAL_AUTH__ADMIN_KEY (or auth.admin_key in the config file), or bind to 127.0.0.1."
            )


class _AdminKeyAlias(PydanticBaseSettingsSource):
    """``FRUGAL_ADMIN_KEY`` (DESIGN's name) as an alias of ``FRUGAL_AUTH__ADMIN_KEY``, which wins over it."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        """Unused: ``__call__`` supplies the whole mapping."""
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        key = os.environ.get("FRUGAL_ADMIN_KEY")
        return {"auth": {"admin_key": key}} if key else {}


def is_loopback(host: str) -> bool:
    """Whether ``host`` names only the local machine."""
    if host in {"localhost", "localhost.localdomain"}:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def load_settings(config_path: Path | None = None, **overrides: Any) -> Settings:
    """Load settings from defaults, the YAML file, the environment and ``overrides`` (highest)."""
    path = config_path or _env_path("FRUGAL_CONFIG")
    if path is None and DEFAULT_CONFIG_PATH.exists():
        path = DEFAULT_CONFIG_PATH
    if path is not None and not path.exists():
        raise SettingsError(f"config file {path} does not exist")
    clean = {key: value for key, value in overrides.items() if value is not None}
    token = _yaml_path.set(path)
    try:
        settings = Settings(**clean)
    except ValidationError as exc:
        raise SettingsError(f"invalid configuration{f' in {path}' if path else ''}:\n{_describe(exc)}") from exc
    finally:
        _yaml_path.reset(token)
    settings.config_path = path
    return settings


def _env_path(name: str) -> Path | None:
    value = os.environ.get(name)
    return Path(value) if value else None


def _describe(exc: ValidationError) -> str:
    lines = []
    for error in exc.errors():
        location = ".".join(str(part) for part in error["loc"]) or "(root)"
        lines.append(f"  {location}: {error['msg']}")
    return "\n".join(lines)
