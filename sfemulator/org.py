"""One emulated org's state, assembled from the config: clock, records, sessions, API budget,
fault plan, the data-API router and the per-route call counters. No HTTP here (see ``app.py``).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from typing import Any

from .collections_api import CollectionsApi
from .composite import CompositeApi
from .config import API_VERSIONS, DemoCredentials, EmulatorConfig
from .faults import FaultPlan
from .ids import IdFactory
from .limits import ApiBudget
from .oauth import OAuthServer
from .rest import RestApi
from .schema import build_schema
from .search import SearchApi
from .store import Store


class Org:
    def __init__(self, config: EmulatorConfig, creds: DemoCredentials) -> None:
        self.config = config
        self.creds = creds
        self.base_url = ""
        self.clock_offset = 0.0
        self.schema = build_schema(config.external_id_fields)
        self.ids = IdFactory(config.seed)
        self.budget = ApiBudget(
            config.daily_api_limit,
            config.concurrency_limit,
            config.long_running_threshold_s,
            self.now,
        )
        self.faults = FaultPlan(config.faults, config.seed + 1)
        self.latency_rng = random.Random(config.seed + 2)  # noqa: S311 - seeded latency jitter
        self.oauth = OAuthServer(
            creds,
            self.now,
            lifetime_s=config.token_lifetime_s,
            audiences=config.jwt_audiences,
            preauthorized=config.jwt_preauthorized,
            rotation=config.refresh_token_rotation,
            base_url=lambda: self.base_url,
            max_calls=config.token_max_calls,
        )
        self.counts: Counter[str] = Counter()
        self.stopping = asyncio.Event()
        self.in_flight_changed = asyncio.Condition()
        self._build_data_api()

    def _build_data_api(self) -> None:
        self.store = Store(
            self.schema,
            self.ids,
            self.now,
            self.creds.user_id,
            self.config.duplicate_rules,
            self.config.validation_rules,
        )
        self.store.seed_reference_data(self._org_row(), self._user_row())
        pages = (
            random.Random(self.config.seed + 3)  # noqa: S311 - seeded page sizes
            if self.config.variable_batch_size
            else None
        )
        self.rest = RestApi(
            self.store, self.budget, self.ids, self.now, self.config.query_locator_ttl_s, pages
        )
        self.router = self.rest.router
        CollectionsApi(self.store, self.router)
        CompositeApi(self.store, self.router, self.count_api_calls)
        SearchApi(self.store, self.router)

    def now(self) -> float:
        """The org's clock: wall time plus whatever tests advanced it by."""
        return time.time() + self.clock_offset

    @property
    def versions(self) -> tuple[str, ...]:
        latest = float(self.config.api_version)
        return tuple(v for v in API_VERSIONS if float(v) <= latest)

    def count_api_calls(self, calls: int = 1) -> None:
        self.budget.count(calls)
        self.counts["api_calls"] += calls

    def latency_s(self, extra_ms: float) -> float:
        jitter = self.config.latency_jitter_ms
        base = self.config.latency_ms + (
            self.latency_rng.uniform(-jitter, jitter) if jitter else 0.0
        )
        return max(base + extra_ms, 0.0) / 1000.0

    def reset(self) -> None:
        """Forget records, counters, cursors and fault counts; keep credentials and sessions."""
        self.counts.clear()
        self.budget.reset()
        self.faults.replace(self.faults.rules)
        self._build_data_api()

    def records(self, sobject: str, *, include_deleted: bool) -> list[dict[str, Any]]:
        return [dict(r) for r in self.store.rows(sobject, include_deleted=include_deleted)]

    def _org_row(self) -> dict[str, Any]:
        return {
            "Id": self.creds.org_id,
            "Name": "actionflows emulator",
            "InstanceName": "EMU1",
            "IsSandbox": False,
            "OrganizationType": self.config.edition,
            "NamespacePrefix": None,
            "TimeZoneSidKey": "GMT",
            "LanguageLocaleKey": "en_US",
        }

    def _user_row(self) -> dict[str, Any]:
        return {
            "Id": self.creds.user_id,
            "Username": self.creds.username,
            "FirstName": "Integration",
            "LastName": "User",
            "Email": self.creds.username,
            "Alias": "integ",
            "IsActive": True,
            "TimeZoneSidKey": "GMT",
            "LocaleSidKey": "en_US",
            "LanguageLocaleKey": "en_US",
            "UserType": "Standard",
        }

    def identity(self, version: str) -> dict[str, Any]:
        """The identity URL payload for the integration user (reference §1.6)."""
        base = self.base_url
        v = version
        user, org = self.creds.user_id, self.creds.org_id
        return {
            "id": self.oauth.identity_url(),
            "asserted_user": True,
            "user_id": user,
            "organization_id": org,
            "username": self.creds.username,
            "nick_name": "integration",
            "display_name": "Integration User",
            "email": self.creds.username,
            "email_verified": True,
            "first_name": "Integration",
            "last_name": "User",
            "timezone": "GMT",
            "photos": {
                "picture": f"{base}/profilephoto/005/F",
                "thumbnail": f"{base}/profilephoto/005/T",
            },
            "addr_street": None,
            "addr_city": None,
            "addr_state": None,
            "addr_country": None,
            "addr_zip": None,
            "mobile_phone": None,
            "mobile_phone_verified": False,
            "is_lightning_login_user": False,
            "status": {"created_date": None, "body": None},
            "urls": {
                "enterprise": f"{base}/services/Soap/c/{v}/{org[:15]}",
                "metadata": f"{base}/services/Soap/m/{v}/{org[:15]}",
                "partner": f"{base}/services/Soap/u/{v}/{org[:15]}",
                "rest": f"{base}/services/data/v{v}/",
                "sobjects": f"{base}/services/data/v{v}/sobjects/",
                "search": f"{base}/services/data/v{v}/search/",
                "query": f"{base}/services/data/v{v}/query/",
                "recent": f"{base}/services/data/v{v}/recent/",
                "tooling_soap": f"{base}/services/Soap/T/{v}/{org[:15]}",
                "tooling_rest": f"{base}/services/data/v{v}/tooling/",
                "profile": f"{base}/{user}",
                "feeds": f"{base}/services/data/v{v}/chatter/feeds",
                "groups": f"{base}/services/data/v{v}/chatter/groups",
                "users": f"{base}/services/data/v{v}/chatter/users",
                "feed_items": f"{base}/services/data/v{v}/chatter/feed-items",
                "feed_elements": f"{base}/services/data/v{v}/chatter/feed-elements",
                "custom_domain": base,
            },
            "active": True,
            "user_type": "STANDARD",
            "language": "en_US",
            "locale": "en_US",
            "utcOffset": 0,
            "last_modified_date": "2026-01-01T00:00:00Z",
            "is_app_installed": True,
        }


def version_label(version: str) -> str:
    """Salesforce's release name for an API version: 31.0 is Summer '14, three a year."""
    index = int(float(version)) - 31
    season = ("Summer", "Winter", "Spring")[index % 3]
    return f"{season} '{14 + (index + 2) // 3}"
