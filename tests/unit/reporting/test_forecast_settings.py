"""The forecast's settings: per-warehouse overrides and the compute URL are checked at start-up."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from storekeeper.config import Settings
from storekeeper.reporting.forecast.service import Policy


def _settings(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg, arg-type]


def test_per_warehouse_overrides_apply_and_the_rest_use_the_defaults() -> None:
    policy = Policy.from_settings(
        _settings(
            forecast_service_level=0.9,
            forecast_lead_time_days=10,
            forecast_service_levels="BER=0.99",
            forecast_lead_times=" BER=5 , HAM=3 ",
        )
    )
    assert policy.of("BER") == (0.99, 5)
    assert policy.of("HAM") == (0.9, 3)
    assert policy.of("MUC") == (0.9, 10)


@pytest.mark.parametrize(
    ("name", "value", "said"),
    [
        ("forecast_lead_times", "BER5", "is not CODE=VALUE"),
        ("forecast_lead_times", "BER=fast", "is not a number"),
        ("forecast_lead_times", "BER=400", "is not 0 to 365 days"),
        ("forecast_service_levels", "HAM=1.2", "is not in [0.5, 1)"),
        ("forecast_service_levels", "a b=0.9", "is not CODE=VALUE"),
        ("compute_url", "http://scheduler:8786", "is not a Dask scheduler address"),
        ("compute_url", "ray://head:10001", "is not a Dask scheduler address"),
    ],
)
def test_a_malformed_setting_is_refused_with_its_name(name: str, value: str, said: str) -> None:
    with pytest.raises(ValidationError) as raised:
        _settings(**{name: value})
    assert said in str(raised.value)
    assert f"STOREKEEPER_{name.upper()}" in str(raised.value)


def test_a_dask_scheduler_address_is_accepted() -> None:
    assert _settings(compute_url="tcp://10.0.0.5:8786").compute_url == "tcp://10.0.0.5:8786"
