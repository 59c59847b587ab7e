"""Imports every context's tables so that ``Base.metadata`` is complete (for Alembic and tests)."""

from __future__ import annotations

from storekeeper.accounts import models as accounts_models
from storekeeper.catalog import models as catalog_models
from storekeeper.db import Base
from storekeeper.events import models as events_models
from storekeeper.imports import models as imports_models
from storekeeper.inventory import models as inventory_models
from storekeeper.ordering import models as ordering_models
from storekeeper.reporting import models as reporting_models
from storekeeper.reporting.forecast import models as forecast_models
from storekeeper.sync import models as sync_models
from storekeeper.tasks import models as tasks_models
from storekeeper.telemetry import models as telemetry_models

CONTEXT_MODELS = (
    accounts_models,
    catalog_models,
    events_models,
    imports_models,
    inventory_models,
    ordering_models,
    reporting_models,
    forecast_models,
    sync_models,
    tasks_models,
    telemetry_models,
)
metadata = Base.metadata
