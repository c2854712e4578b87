"""The engine's settings from the environment: the window W, the no_match toggle, the Salesforce gather."""

from __future__ import annotations

import pytest

from agents.engine import EngineSettings
from agents.settings import engine_from_env


def test_defaults_and_values_from_the_environment() -> None:
    """Unset: the defaults (W=2000, no_match results on); set: the values given."""
    assert engine_from_env({}) == EngineSettings()
    assert EngineSettings().max_in_flight == 2000
    settings = engine_from_env(
        {"ACTIONFLOWS_MAX_IN_FLIGHT": "500", "ACTIONFLOWS_NO_MATCH_RESULTS": "False"}
    )
    assert (settings.max_in_flight, settings.no_match_results) == (500, False)
    assert EngineSettings().salesforce_gather_s == 0.020
    assert engine_from_env({"ACTIONFLOWS_SALESFORCE_GATHER": "5ms"}).salesforce_gather_s == 0.005
    assert engine_from_env({"ACTIONFLOWS_SALESFORCE_GATHER": "0"}).salesforce_gather_s == 0.0


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("ACTIONFLOWS_MAX_IN_FLIGHT", "0"),
        ("ACTIONFLOWS_MAX_IN_FLIGHT", "lots"),
        ("ACTIONFLOWS_NO_MATCH_RESULTS", "maybe"),
        ("ACTIONFLOWS_SALESFORCE_GATHER", "soon"),
    ],
)
def test_a_bad_value_names_its_variable(name: str, value: str) -> None:
    """A value that does not parse is refused with the variable's name."""
    with pytest.raises(ValueError, match=name):
        engine_from_env({name: value})
