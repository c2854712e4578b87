"""Several orgs at once: one :class:`SalesforceClient` (one token, one session) per connection.

The engine asks for a connection by name (a flow may target ``sandbox`` while another targets
``production``); the client is created on first use and every client is closed together.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from salesforce.client import SalesforceClient
from salesforce.indicator import ConnectionIndicator, Permission, build_indicator
from salesforce.settings import ConnectionSettings, SalesforceSettings

ClientFactory = Callable[[ConnectionSettings], SalesforceClient]


class Connections:
    """The configured connections, each with its lazily created client."""

    def __init__(
        self, settings: SalesforceSettings, *, factory: ClientFactory = SalesforceClient
    ) -> None:
        self.settings = settings
        self._factory = factory
        self._clients: dict[str, SalesforceClient] = {}

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.settings.connections)

    def get(self, name: str | None = None) -> SalesforceClient:
        """The client for ``name`` (or the default connection); raises SettingsError if unknown."""
        connection = self.settings.get(name)
        client = self._clients.get(connection.name)
        if client is None:
            client = self._clients[connection.name] = self._factory(connection)
        return client

    async def indicators(
        self,
        actions: Sequence[str] = (),
        *,
        requirements: dict[str, tuple[str, Permission]] | None = None,
    ) -> list[ConnectionIndicator]:
        """The indicator of every configured connection, checked concurrently."""
        return list(
            await asyncio.gather(
                *(
                    build_indicator(self.get(name), actions, requirements=requirements)
                    for name in self.names
                )
            )
        )

    async def aclose(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        await asyncio.gather(*(client.close() for client in clients))

    async def __aenter__(self) -> Connections:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
