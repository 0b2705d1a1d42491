"""Secret references: app settings and Key Vault secret URIs read with the managed identity (the ARM twin's vault)."""

from __future__ import annotations

import logging
import re
from typing import Any

import pytest

from local.runtime.clock import VirtualClock
from local.twins.qumulo.api import QumuloTwin
from local.twins.qumulo.model import Cluster
from shared.config.model import AnqCluster, SecretRef
from shared.errors import ConfigError, DependencyError
from shared.qumulo.client import QumuloClient
from shared.secrets import SecretResolver

VAULT = "https://kv-tandem-test.vault.azure.net/secrets"


def _vault(arm: Any) -> Any:
    return arm({"key_vaults": {"kv-tandem-test": {"qumulo-token": "placeholder", "qumulo-password": "s3cret-Pa55"}}})


def test_a_key_vault_secret_is_read_with_the_managed_identity_and_cached(arm: Any, caplog: Any) -> None:
    twin = _vault(arm)
    clock = [0.0]
    resolver = SecretResolver(ttl_s=300, now=lambda: clock[0])
    caplog.set_level(logging.DEBUG)
    ref = SecretRef(key_vault_secret=f"{VAULT}/qumulo-password")
    assert resolver.resolve(ref) == "s3cret-Pa55"
    assert resolver.resolve(ref) == "s3cret-Pa55"
    assert len(twin.server.log("GET", "/vaults/")) == 1  # cached
    clock[0] = 301
    twin.set_secret("kv-tandem-test", "qumulo-password", "rotated-Pa55")
    assert resolver.resolve(ref) == "rotated-Pa55"  # a rotation is picked up after the cache period
    assert "Pa55" not in caplog.text  # values are never logged


def test_a_missing_secret_or_setting_is_a_clear_error_naming_the_reference(arm: Any) -> None:
    twin = _vault(arm)
    resolver = SecretResolver(env=twin.identity_settings)  # settings as given, without QUMULO_PASSWORD
    with pytest.raises(DependencyError, match=re.escape("404 SecretNotFound for https://kv-tandem-test.vault.azure.net/secrets/nope")):
        resolver.resolve(SecretRef(key_vault_secret=f"{VAULT}/nope"))
    with pytest.raises(ConfigError, match=r"anq\.password: app setting QUMULO_PASSWORD is not set"):
        resolver.resolve(SecretRef(app_setting="QUMULO_PASSWORD"), field="anq.password")
    assert SecretResolver(env={"QUMULO_PASSWORD": "x"}).resolve(SecretRef(app_setting="QUMULO_PASSWORD")) == "x"


def test_a_qumulo_client_for_a_topology_cluster_signs_in_with_a_key_vault_token(arm: Any) -> None:
    vault = _vault(arm)
    cluster = Cluster("anq-central", VirtualClock())
    vault.set_secret("kv-tandem-test", "qumulo-token", cluster.issue_access_token())
    with QumuloTwin(cluster) as twin:
        anq = AnqCluster.model_validate(
            {
                "name": "anq-central",
                "address": twin.base_url,
                "ca_bundle": twin.ca.ca_path,
                "credentials": {"access_token": {"key_vault_secret": f"{VAULT}/qumulo-token"}},
            }
        )
        with QumuloClient.for_cluster(anq, SecretResolver()) as client:
            assert client.list_snapshots() == []
        assert twin.server.log("POST", "/v1/session/login") == []  # an access token needs no login
        anq = AnqCluster.model_validate(
            {
                "name": "anq-central",
                "address": twin.base_url,
                "ca_bundle": twin.ca.ca_path,
                "credentials": {"username": "admin", "password": {"app_setting": "QUMULO_CENTRAL_PASSWORD"}},
            }
        )
        with QumuloClient.for_cluster(anq, SecretResolver(env={"QUMULO_CENTRAL_PASSWORD": "tandem-demo"})) as client:
            assert client.list_snapshots() == []
        assert len(twin.server.log("POST", "/v1/session/login")) == 1
