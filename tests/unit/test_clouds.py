"""Sovereign clouds: the ARM and Key Vault token scopes follow the endpoint and the vault's DNS suffix, never a fixed
public-cloud audience; a local twin keeps the public ARM scope its identity endpoint expects."""

from __future__ import annotations

import pytest

from shared.azure.gateway import arm_scope
from shared.errors import ConfigError
from shared.secrets import vault_scope


@pytest.mark.parametrize(
    ("endpoint", "scope"),
    [
        ("https://management.azure.com", "https://management.azure.com/.default"),
        ("https://management.usgovcloudapi.net/", "https://management.usgovcloudapi.net/.default"),
        ("https://management.chinacloudapi.cn", "https://management.chinacloudapi.cn/.default"),
        ("https://127.0.0.1:50123", "https://management.azure.com/.default"),
    ],
)
def test_arm_scope_follows_the_endpoint(endpoint: str, scope: str) -> None:
    assert arm_scope(endpoint) == scope


@pytest.mark.parametrize(
    ("uri", "scope"),
    [
        ("https://kv-tandem.vault.azure.net/secrets/qumulo", "https://vault.azure.net/.default"),
        ("https://kv-tandem.vault.usgovcloudapi.net/secrets/qumulo/1a2b", "https://vault.usgovcloudapi.net/.default"),
        ("https://kv-tandem.vault.azure.cn/secrets/qumulo", "https://vault.azure.cn/.default"),
    ],
)
def test_key_vault_scope_follows_the_vaults_cloud(uri: str, scope: str) -> None:
    assert vault_scope(uri) == scope


def test_a_uri_that_is_no_vault_secret_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="not a Key Vault secret URI"):
        vault_scope("https://example.com/secrets/x")
