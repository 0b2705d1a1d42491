"""Tandem's Azure gateway: AVD, Compute and role assignments through the azure-mgmt SDKs."""

from shared.azure.gateway import Assignment, AzureGateway, PoolReads
from shared.azure.models import HostState, Outcome, PoolRef, PoolState, UserSession

__all__ = ["Assignment", "AzureGateway", "HostState", "Outcome", "PoolReads", "PoolRef", "PoolState", "UserSession"]
