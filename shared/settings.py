"""Every app-setting name Tandem reads, in one place, with explicit arguments beating the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping

TOPOLOGY_PATH = "TANDEM_TOPOLOGY_PATH"
TASK_HUB = "TANDEM_TASK_HUB"
STORAGE = "AzureWebJobsStorage"
EVENTS_ENDPOINT = "TANDEM_EVENTS_ENDPOINT"
EVENTS_KEY = "TANDEM_EVENTS_KEY"
AUTOSCALE_SCHEDULE = "AUTOSCALE_SCHEDULE"
SNAPSHOT_SCHEDULE = "SNAPSHOT_SCHEDULE"
ANQ_WATCH_SCHEDULE = "ANQ_WATCH_SCHEDULE"
APPINSIGHTS = "APPLICATIONINSIGHTS_CONNECTION_STRING"
APPINSIGHTS_AUTH = "APPLICATIONINSIGHTS_AUTHENTICATION_STRING"  # 'ClientId=<id>;Authorization=AAD' in Azure
AUTH_ENABLED = "WEBSITE_AUTH_ENABLED"
LOG_LEVEL = "TANDEM_LOG_LEVEL"
ARM_ENDPOINT = "TANDEM_ARM_ENDPOINT"
MANAGED_IDENTITY_CLIENT_ID = "AZURE_CLIENT_ID"
KEY_VAULT_ENDPOINT = "TANDEM_KEY_VAULT_ENDPOINT"  # unset in Azure; the local twin serves /vaults/<vault>/secrets/...
ARM_RETRY_BUDGET = "TANDEM_ARM_RETRY_BUDGET_S"  # how long one ARM call is retried (5xx, 429, resets); default 60
AUTOSCALE_PARTITION_POOLS = "TANDEM_AUTOSCALE_PARTITION_POOLS"  # pools per sweep partition; default 25

DEFAULTS: Mapping[str, str] = {
    TOPOLOGY_PATH: "topology.yaml",
    TASK_HUB: "tandem",
    AUTOSCALE_SCHEDULE: "0 * * * * *",
    SNAPSHOT_SCHEDULE: "0 */15 * * * *",
    ANQ_WATCH_SCHEDULE: "30 * * * * *",  # every minute, half a minute off the autoscale timer
    LOG_LEVEL: "INFO",
    ARM_ENDPOINT: "https://management.azure.com",
}


SCHEDULES = (AUTOSCALE_SCHEDULE, SNAPSHOT_SCHEDULE, ANQ_WATCH_SCHEDULE)


def schedule_defaults(given: Mapping[str, str] | None = None) -> dict[str, str]:
    """App settings with the schedules' defaults filled in. The Functions host resolves %NAME% in a trigger only
    from app settings, so every host of this app (the infra, the local runtime) must set them."""
    values = dict(given or {})
    for name in SCHEDULES:
        values.setdefault(name, os.environ.get(name) or DEFAULTS[name])
    return values


def storage(service: str) -> tuple[str, bool] | None:
    """Where `service` ('blob', 'queue' or 'table') of AzureWebJobsStorage is: (connection string, False) locally,
    (endpoint, True) in Azure, where shared keys are off and the identity-based form
    (`AzureWebJobsStorage__<service>ServiceUri` or `__accountName`) is set; None if neither is."""
    value = get(STORAGE)
    if value:
        return value, False
    uri = os.environ.get(f"{STORAGE}__{service}ServiceUri")
    account = os.environ.get(f"{STORAGE}__accountName")
    if uri or account:
        return uri or f"https://{account}.{service}.core.windows.net", True
    return None


def get(name: str, explicit: str | None = None, env: Mapping[str, str] | None = None) -> str | None:
    """Return `explicit` if given, else the app setting `name`, else its default (None if it has none)."""
    if explicit is not None:
        return explicit
    source = os.environ if env is None else env
    value = source.get(name)
    if value not in (None, ""):
        return value
    return DEFAULTS.get(name)


def flag(name: str, env: Mapping[str, str] | None = None) -> bool:
    """Read an app setting the way App Service writes booleans ('True', 'true', '1')."""
    value = get(name, env=env) or ""
    return value.strip().lower() in {"1", "true", "yes"}
