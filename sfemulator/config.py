"""The emulator's settings and the demo org's credentials, both immutable.

Defaults describe a fresh Developer Edition org (reference §7): 15,000 API requests per rolling
24 hours, at most 5 concurrent long-running (>= 20 s) requests, a 2-hour session timeout.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from .faults import FaultRule
from .rules import DEFAULT_DUPLICATE_RULES, DuplicateRule, ValidationRule
from .schema import DEFAULT_EXTERNAL_ID_FIELDS

LATEST_API_VERSION = "67.0"
# Every version a real org still serves, oldest first, as GET /services/data/ lists them.
API_VERSIONS: tuple[str, ...] = tuple(f"{v}.0" for v in range(31, 68))
LOGIN_AUDIENCES = ("https://login.salesforce.com", "https://test.salesforce.com")


@dataclass(frozen=True)
class DemoCredentials:
    """The demo org's connected app, integration user and JWT signing material.

    ``password`` is what the password grant expects (the password with the security token
    appended, as Salesforce requires). ``private_key_pem`` signs JWT bearer assertions;
    ``certificate_pem`` is what the connected app was configured with.
    """

    client_id: str
    client_secret: str = field(repr=False)
    username: str
    password: str = field(repr=False)
    private_key_pem: str = field(repr=False)
    certificate_pem: str
    org_id: str
    user_id: str


@dataclass(frozen=True)
class EmulatorConfig:
    """Everything that shapes the emulated org. ``port=0`` picks a free port."""

    host: str = "127.0.0.1"
    port: int = 0
    # The base URL clients reach the emulator at, which its token responses give as the
    # instance URL. None: from host and port (a container that binds 0.0.0.0 needs its name).
    public_url: str | None = None
    tls: bool = False
    seed: int = 0
    api_version: str = LATEST_API_VERSION
    token_lifetime_s: float = 7200.0
    token_max_calls: int | None = None  # test knob: a session dies after this many calls
    daily_api_limit: int = 15000
    concurrency_limit: int = 5
    long_running_threshold_s: float = 20.0
    faults: tuple[FaultRule, ...] = ()
    latency_ms: float = 0.0
    latency_jitter_ms: float = 0.0
    external_id_fields: Mapping[str, str] = field(
        default_factory=lambda: dict(DEFAULT_EXTERNAL_ID_FIELDS)
    )
    duplicate_rules: tuple[DuplicateRule, ...] = DEFAULT_DUPLICATE_RULES
    validation_rules: tuple[ValidationRule, ...] = ()
    jwt_audiences: tuple[str, ...] = LOGIN_AUDIENCES
    jwt_preauthorized: bool = True
    refresh_token_rotation: bool = False
    query_locator_ttl_s: float = 2 * 24 * 3600.0
    variable_batch_size: bool = False  # pages of batch/2..batch rows, as wide rows get on orgs
    edition: str = "Developer Edition"
    credentials: DemoCredentials | None = None  # None: generated from ``seed`` at start

    def __post_init__(self) -> None:
        if self.api_version not in API_VERSIONS:
            raise ValueError(
                f"api_version must be one of {API_VERSIONS[0]}..{API_VERSIONS[-1]}, "
                f"like '62.0'; got {self.api_version!r}"
            )
        for name in ("faults", "duplicate_rules", "validation_rules", "jwt_audiences"):
            object.__setattr__(self, name, tuple(getattr(self, name)))  # lists are fine too
