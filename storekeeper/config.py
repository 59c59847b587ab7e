"""Settings from ``STOREKEEPER_*`` environment variables, ``.env`` and ``storekeeper.toml``."""

from __future__ import annotations

import difflib
import logging
import os
import re
import secrets
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

_SECRET_FILE = "secret_key"
_PLACEHOLDER = re.compile(
    r"change[-_ ]?me|changeit|replace[-_ ]?me|placeholder|example|your[-_ ]|secret[-_]?key|"
    r"^(.)\1*$|^(0123456789|abc|password|secret)",
    re.IGNORECASE,
)
"""What a secret copied from documentation or left as a placeholder looks like."""
_NOT_SETTINGS = ("STOREKEEPER_TEST_", "STOREKEEPER_BENCH_", "STOREKEEPER_CLUSTER_")
"""Prefixes of variables that tests, benchmarks and scripts read: not settings, not typos."""
_warned: set[str] = set()
T = TypeVar("T")
log = logging.getLogger(__name__)
Context = Literal["accounts", "catalog", "inventory", "ordering", "reporting", "sync", "telemetry"]
"""A bounded context with HTTP routes, which ``serve --only`` may serve on its own."""


class InsecureSettings(ValueError):
    """A setting left at a development default where a production deployment runs."""


class Settings(BaseSettings):
    """Every public setting of Storekeeper; names and defaults: docs/design.md section 3."""

    model_config = SettingsConfigDict(
        env_prefix="STOREKEEPER_",
        env_file=".env",
        extra="ignore",
        toml_file="storekeeper.toml",
    )

    env: Literal["local", "production"] = "local"
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    data_dir: Path = Path("./data")
    database_url: str = ""
    secret_key: SecretStr = SecretStr("")
    broker_url: str = ""
    broker_prefix: str = Field(default="storekeeper", pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    redis_url: str = ""
    payment_url: str = ""
    smtp_url: str = ""
    mqtt_url: str = ""
    telemetry_port: int = Field(default=7070, ge=0, le=65535)  # 0: no TCP listener
    telemetry_url: str = ""
    # Sensor transports (docs/telemetry.md): TCP line protocol limits, MQTT topic and session.
    telemetry_max_connections: int = Field(default=1000, ge=1)
    telemetry_idle_timeout_s: float = Field(default=300.0, gt=0)
    # Per caller (docs/security.md): connections one address may hold, and how long a
    # connection may stay before its AUTH line (a sensor sends it at once).
    telemetry_max_connections_per_address: int = Field(default=100, ge=1)
    telemetry_auth_timeout_s: float = Field(default=3.0, gt=0)
    mqtt_topic_prefix: str = Field(default="storekeeper", pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    mqtt_client_id: str = ""  # empty: <broker_prefix>-telemetry-<hostname>-<deployment hash>
    mqtt_connections: int = Field(default=4, ge=1, le=64)
    alert_grace_s: int = 300
    # A monitored sensor (one with a temperature range) with no reading for this long raises a
    # ``sensor.silent`` alert; its next reading clears it (docs/telemetry.md).
    sensor_silent_s: int = Field(default=900, ge=60)
    # The console dashboard lists stock rows with at most this many units available. One number
    # for every product until issue 16 brings per-product reorder points, which replace it.
    low_stock_units: int = Field(default=5, ge=0)
    # Split services (docs/scaling.md): the contexts this process serves, and where inventory
    # runs when it is not one of them.
    only: list[Context] = Field(default_factory=list)
    inventory_url: str = ""
    # gRPC inventory service, `storekeeper grpc` (docs/grpc.md).
    grpc_host: str = "127.0.0.1"
    grpc_port: int = Field(default=50051, ge=1, le=65535)
    # WatchStock streams one account may hold at once (a clerk's handhelds, a device).
    grpc_max_watches_per_account: int = Field(default=10, ge=1)
    # Telemetry retention (docs/telemetry.md): raw readings, then per-minute aggregates. Days
    # may be fractions, as for the retention below (the soak keeps minutes).
    telemetry_raw_retention_days: float = Field(default=7.0, gt=0)
    telemetry_minute_retention_days: float = Field(default=400.0, gt=0)

    # Demand forecast and reorder points (docs/forecast.md). The compute URL names a Dask
    # scheduler (tcp://HOST:PORT) that the per-series work fans out to; unset = this process.
    compute_url: str = ""
    forecast_every_s: float = Field(default=24 * 3600.0, ge=60)
    forecast_history_days: int = Field(default=365, ge=14, le=3660)
    forecast_service_level: float = Field(default=0.95, ge=0.5, lt=1.0)
    forecast_lead_time_days: int = Field(default=7, ge=0, le=365)
    # Per-warehouse overrides of the two above: "BER=0.99,HAM=0.9" and "BER=5,HAM=3".
    forecast_service_levels: str = ""
    forecast_lead_times: str = ""
    # A purchase suggestion orders up to the reorder point plus this many days of forecast.
    forecast_cover_days: int = Field(default=14, ge=0, le=365)
    forecast_block_series: int = Field(default=500, ge=1, le=100_000)
    forecast_processes: int = Field(default=1, ge=1, le=64)

    @field_validator("compute_url")
    @classmethod
    def _check_compute_url(cls, url: str) -> str:
        if url and not re.fullmatch(r"(tcp|tls)://[^\s/:]+(:[0-9]{1,5})?", url):
            raise ValueError(
                f"STOREKEEPER_COMPUTE_URL: {url!r} is not a Dask scheduler address; "
                "write tcp://HOST:PORT"
            )
        return url

    @field_validator("forecast_service_levels")
    @classmethod
    def _check_service_levels(cls, text: str) -> str:
        levels = per_warehouse(text, float, setting="STOREKEEPER_FORECAST_SERVICE_LEVELS")
        for code, level in levels.items():
            if not 0.5 <= level < 1.0:
                raise ValueError(
                    f"STOREKEEPER_FORECAST_SERVICE_LEVELS: {code}={level:g} is not in [0.5, 1)"
                )
        return text

    @field_validator("forecast_lead_times")
    @classmethod
    def _check_lead_times(cls, text: str) -> str:
        days = per_warehouse(text, int, setting="STOREKEEPER_FORECAST_LEAD_TIMES")
        for code, value in days.items():
            if not 0 <= value <= 365:
                raise ValueError(
                    f"STOREKEEPER_FORECAST_LEAD_TIMES: {code}={value} is not 0 to 365 days"
                )
        return text

    access_token_ttl_s: int = Field(default=900, ge=30)
    refresh_token_ttl_s: int = Field(default=14 * 24 * 3600, ge=60)
    device_token_ttl_s: int = Field(default=365 * 24 * 3600, ge=60)
    password_reset_ttl_s: int = Field(default=30 * 60, ge=60, le=24 * 3600)
    # Retention (docs/operations.md, "Retention"): how long delivered things are kept. Days may
    # be fractions (a soak test keeps minutes).
    sync_retention_days: float = Field(default=30.0, gt=0)
    job_done_retention_days: float = Field(default=7.0, gt=0)
    job_failed_retention_days: float = Field(default=30.0, gt=0)
    idempotency_retention_hours: float = Field(default=48.0, gt=0)
    prune_every_s: float = Field(default=3600.0, ge=1)
    # How long a process trusts its copy of the signing keys (docs/operations.md, "Rotating
    # the signing keys"): a rotation signs, and a retirement refuses, everywhere within this.
    keys_reload_s: float = Field(default=30.0, gt=0, le=3600)
    require_2fa_roles: list[Literal["admin", "manager", "clerk", "customer"]] = Field(
        default_factory=list
    )
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    # An import file (POST /products/import): 100,000 products fit in about 10 MB.
    import_max_bytes: int = Field(default=64 * 1_048_576, ge=1024)
    db_pool_size: int = Field(default=10, ge=1)

    payment_timeout_s: float = Field(default=3.0, gt=0)
    payment_retries: int = Field(default=2, ge=0, le=10)
    payment_breaker_failures: int = Field(default=5, ge=1)
    payment_breaker_reset_s: float = Field(default=30.0, gt=0)
    payment_deadline_s: float = Field(default=120.0, ge=1)
    # With a remote inventory (STOREKEEPER_INVENTORY_URL): an order's reservation still held
    # after this long, whose order never committed (its process was killed in between), is
    # released by ordering's sweeper (docs/scaling.md).
    reservation_grace_s: float = Field(default=300.0, ge=1)
    mail_from: str = "Storekeeper <storekeeper@localhost>"
    job_max_attempts: int = Field(default=8, ge=1)
    job_threads: int = Field(default=2, ge=1, le=64)
    job_lease_s: float = Field(default=60.0, gt=0)
    # A consumer failing on an event (docs/operations.md, "Parked events and failed jobs"):
    # attempts before the event is parked for that consumer, and the first retry's delay
    # (doubling each time).
    event_max_attempts: int = Field(default=5, ge=1, le=100)
    event_retry_base_s: float = Field(default=5.0, gt=0, le=3600)
    lease_s: float = Field(default=15.0, gt=0)

    # Live updates (GET /events, WS /live): see docs/live.md.
    live_poll_s: float = Field(default=0.2, gt=0)
    live_heartbeat_s: float = Field(default=15.0, gt=0)
    live_recheck_s: float = Field(default=30.0, gt=0)
    live_max_clients: int = Field(default=1000, ge=1)
    # Streams (SSE + WebSocket) one account may hold at once: customers, and every other role.
    live_max_streams_customer: int = Field(default=3, ge=1)
    live_max_streams_staff: int = Field(default=20, ge=1)
    live_queue_size: int = Field(default=1000, ge=1)
    live_replay_limit: int = Field(default=10_000, ge=1)

    # Product reads (docs/api.md, "Caching"; docs/scaling.md): views each API process keeps
    # (0 = no cache), how old the process's last outbox read may be for it to serve from them
    # (the staleness bound across processes), and the max-age of anonymous reads.
    catalog_cache_size: int = Field(default=10_000, ge=0)
    catalog_cache_max_stale_s: float = Field(default=1.0, gt=0)
    catalog_http_max_age_s: int = Field(default=0, ge=0)

    # Observability (docs/observability.md): unset = /metrics open (serve it on an internal
    # address); set = /metrics wants "Authorization: Bearer <token>".
    metrics_token: SecretStr = SecretStr("")
    # `storekeeper worker` has no HTTP server: it serves /metrics on this port (0 = not at all).
    metrics_port: int = Field(default=0, ge=0, le=65535)
    shutdown_grace_s: int = Field(default=25, ge=0)

    # Transport limits of `storekeeper serve` (docs/security.md, "Transport limits and trusted
    # proxies"): request head size (431 beyond), time to send a whole head (408 beyond), open
    # connections per process, the listen backlog and the idle keep-alive time.
    http_max_header_bytes: int = Field(default=32 * 1024, ge=1024)
    http_header_timeout_s: float = Field(default=10.0, gt=0)
    http_max_connections: int = Field(default=800, ge=1)
    http_backlog: int = Field(default=1024, ge=1)
    http_keep_alive_s: int = Field(default=5, ge=1)
    # Addresses or networks (CIDR) whose X-Forwarded-For / X-Forwarded-Proto are believed: the
    # reverse proxy in front. Empty (the default): serving directly, the peer is the client.
    trusted_proxies: list[str] = Field(default_factory=list)

    @field_validator("trusted_proxies")
    @classmethod
    def _check_trusted_proxies(cls, proxies: list[str]) -> list[str]:
        import ipaddress

        for proxy in proxies:
            if proxy == "*":
                raise ValueError(
                    'STOREKEEPER_TRUSTED_PROXIES: "*" would let any client choose its address; '
                    "list the proxy's address or network"
                )
            try:
                ipaddress.ip_network(proxy, strict=False)
            except ValueError:
                raise ValueError(
                    f"STOREKEEPER_TRUSTED_PROXIES: {proxy!r} is not an IP address or network"
                ) from None
        return proxies

    # Hardening (security headers, CORS): see docs/security.md.
    cors_origins: list[str] = Field(default_factory=list)

    @field_validator("cors_origins")
    @classmethod
    def _check_cors_origins(cls, origins: list[str], info: ValidationInfo) -> list[str]:
        # A browser sends its Origin as scheme://host[:port], lower case, and CORS matches it
        # exactly: a path, a trailing slash or capitals would silently never match.
        origin_format = r"https?://(\[[0-9a-f:.]+\]|[a-z0-9.-]+)(:[0-9]{1,5})?"
        for origin in origins:
            if origin != "*" and not re.fullmatch(origin_format, origin):
                raise ValueError(
                    f"STOREKEEPER_CORS_ORIGINS: {origin!r} is not an origin; write "
                    "scheme://host[:port] in lower case, without a path or trailing slash"
                )
        if "*" in origins and info.data.get("env") == "production":
            raise InsecureSettings(
                'STOREKEEPER_CORS_ORIGINS must list the allowed origins, not "*", '
                "when STOREKEEPER_ENV=production"
            )
        return origins

    # Rate limits: see docs/security.md.
    rate_limits_enabled: bool = True
    rate_limit_login: str = "5/minute per account, 20/minute per address"
    rate_limit_register: str = "10/hour per address"
    rate_limit_password_reset: str = "5/hour per account, 10/hour per address"
    rate_limit_refresh: str = "30/minute per account"
    rate_limit_orders: str = "60/minute per account, 600/minute per address"
    rate_limit_prefix: str = Field(
        default="storekeeper:ratelimit", pattern=r"^[A-Za-z0-9_.:-]{1,64}$"
    )

    @model_validator(mode="after")
    def _check_rate_limits(self) -> Settings:
        # Imported here: a typo in a limit stops the start-up with the setting's name.
        from storekeeper.api.limit_rules import parse_limits

        for name in ("login", "register", "password_reset", "refresh", "orders"):
            try:
                parse_limits(getattr(self, f"rate_limit_{name}"))
            except ValueError as exc:
                raise ValueError(f"STOREKEEPER_RATE_LIMIT_{name.upper()}: {exc}") from exc
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Environment beats ``.env`` beats ``storekeeper.toml``."""
        return (
            init_settings,
            env_settings,
            dotenv_settings,
            TomlConfigSettingsSource(settings_cls),
            file_secret_settings,
        )

    @model_validator(mode="after")
    def _check_split_services(self) -> Settings:
        # An order's transaction holds SQLite's one write lock while it asks the inventory
        # process for stock, and that process needs the same lock: split services need
        # PostgreSQL (or any server database).
        if self.inventory_url and self.effective_database_url.startswith("sqlite"):
            raise ValueError(
                "STOREKEEPER_INVENTORY_URL (inventory in another process) needs "
                "STOREKEEPER_DATABASE_URL to name a PostgreSQL database, not SQLite"
            )
        return self

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, url: str) -> str:
        # A mistyped scheme (postgress://) would otherwise surface as a long traceback from
        # deep inside SQLAlchemy the first time a command opens the database.
        if not url:
            return url
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError, NoSuchModuleError

        scheme = url.partition("://")[0]
        try:
            make_url(_psycopg_url(url)).get_dialect()
        except (ArgumentError, NoSuchModuleError, ValueError) as exc:
            raise ValueError(
                f"STOREKEEPER_DATABASE_URL: unknown scheme {scheme!r}; "
                "use sqlite:///PATH or postgresql://USER:PASSWORD@HOST/DB"
            ) from exc
        return url

    @model_validator(mode="after")
    def _refuse_insecure_production(self) -> Settings:
        if self.env == "production":
            key = self.secret_key.get_secret_value()
            if len(key.encode()) < 32 or _PLACEHOLDER.search(key):
                raise InsecureSettings(
                    "STOREKEEPER_SECRET_KEY must be a random secret of at least 32 bytes, not "
                    "a placeholder or the example, when STOREKEEPER_ENV=production (generate "
                    "one: python3 -c 'import secrets; print(secrets.token_urlsafe(48))')"
                )
            if not self.database_url:
                raise InsecureSettings(
                    "STOREKEEPER_DATABASE_URL must be set when STOREKEEPER_ENV=production"
                )
        return self

    @property
    def effective_database_url(self) -> str:
        """The SQLAlchemy URL in use: the configured one, or a SQLite file in the data dir."""
        url = self.database_url or f"sqlite:///{(self.data_dir / 'storekeeper.db').resolve()}"
        return _psycopg_url(url)

    def signing_key(self) -> str:
        """The token-signing secret; in local mode one is generated once into the data dir."""
        configured = self.secret_key.get_secret_value()
        if configured:
            return configured
        path = self.data_dir / _SECRET_FILE
        if path.exists():
            return path.read_text().strip()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48)
        # O_EXCL: two processes starting together must end up sharing one key.
        try:
            with path.open("x") as handle:
                handle.write(key)
            path.chmod(0o600)
        except FileExistsError:
            return path.read_text().strip()
        return key

    def masked(self) -> dict[str, Any]:
        """The effective settings, secrets and URL passwords hidden (``storekeeper config``)."""
        shown: dict[str, Any] = {}
        for name, value in self.model_dump().items():
            if isinstance(value, SecretStr) or name == "secret_key":
                text = value.get_secret_value() if isinstance(value, SecretStr) else str(value)
                unset = "(generated in data dir)" if name == "secret_key" else "(unset)"
                shown[name] = "**********" if text else unset
            elif isinstance(value, str) and "://" in value and "@" in value:
                shown[name] = _mask_url_password(value)
            else:
                shown[name] = str(value) if isinstance(value, Path) else value
        shown["effective_database_url"] = _mask_url_password(self.effective_database_url)
        return shown


def per_warehouse(text: str, convert: Callable[[str], T], *, setting: str) -> dict[str, T]:
    """``"BER=5,HAM=3"`` as ``{"BER": 5, "HAM": 3}`` (values through ``convert``).

    A setting that overrides a default per warehouse; blank means no overrides.
    """
    found: dict[str, T] = {}
    for part in text.split(","):
        if not part.strip():
            continue
        code, sep, value = part.partition("=")
        code = code.strip()
        if not sep or not re.fullmatch(r"[A-Za-z0-9_-]{1,32}", code):
            raise ValueError(f"{setting}: {part.strip()!r} is not CODE=VALUE (e.g. BER=5,HAM=3)")
        try:
            found[code] = convert(value.strip())
        except ValueError:
            raise ValueError(f"{setting}: {value.strip()!r} for {code} is not a number") from None
    return found


def warn_unknown_environment(environ: Mapping[str, str] | None = None) -> list[str]:
    """Log one warning per ``STOREKEEPER_*`` variable that names no setting; the names warned.

    A typo (``STOREKEEPER_DATABSE_URL``) is otherwise ignored without a word and the default
    used. Each name is warned about once per process.
    """
    environ = os.environ if environ is None else environ
    known = [f"STOREKEEPER_{name.upper()}" for name in Settings.model_fields]
    unknown = []
    for name in sorted(environ):
        upper = name.upper()
        if not upper.startswith("STOREKEEPER_") or upper in known:
            continue
        if upper.startswith(_NOT_SETTINGS):
            continue
        unknown.append(name)
        if name in _warned:
            continue
        _warned.add(name)
        close = difflib.get_close_matches(upper, known, n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]}?" if close else ""
        log.warning("unknown setting %s is ignored%s", name, hint)
    return unknown


def _psycopg_url(url: str) -> str:
    # Plain postgres URLs mean psycopg 3, the driver we ship.
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _mask_url_password(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    credentials, _, host = rest.rpartition("@")
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}"
