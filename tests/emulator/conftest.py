"""Fixtures: a fresh emulated org per test, an aiohttp client, and a small authenticated helper."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from emulator_helpers import Api

from sfemulator import Emulator, EmulatorConfig


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator(EmulatorConfig(seed=7)) as running:
        yield running


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def api(emu: Emulator, http: aiohttp.ClientSession) -> Api:
    return Api(emu, http, emu.issue_access_token())
