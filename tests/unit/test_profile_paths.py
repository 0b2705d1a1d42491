"""Where FSLogix looks, as Tandem reads and checks it (shared/failover/fslogix.py): UNC paths, Cloud Cache
providers, shares and the problem an administrator reads."""

from __future__ import annotations

import pytest

from shared.failover.fslogix import SCRIPT, Settings, Share, Unc, check, container_name, expected, resolve

NAMES = ["anq-central.contoso.local", "10.2.0.6"]
SHARES = [Share("profiles", "/profiles/fslogix"), Share("dr", "/profiles-dr")]


def settings(**values: object) -> Settings:
    return Settings.from_values("avd-central-001", "2026-11-30T14:00:00+00:00", {"Enabled": 1, **values})


def test_unc_paths_split_into_server_share_and_path() -> None:
    assert Unc.parse(r"\\ANQ-Central.contoso.local\Profiles") == Unc("anq-central.contoso.local", "Profiles", "")
    assert Unc.parse(r"\\10.2.0.6\dr\fslogix\\") is None  # an empty segment is not a path
    assert Unc.parse(r"\\10.2.0.6\dr\fslogix\\"[:-1]) == Unc("10.2.0.6", "dr", "/fslogix")
    for bad in ("", "anq\\profiles", "//anq/profiles", r"\\anq", "C:\\profiles"):
        assert Unc.parse(bad) is None, bad


def test_vhd_locations_as_multi_string_or_semicolon_list_and_cloud_cache_wins() -> None:
    assert settings(VHDLocations=[r"\\a\x", r"\\b\y"]).locations == (r"\\a\x", r"\\b\y")
    assert settings(VHDLocations=r"\\a\x;\\b\y").locations == (r"\\a\x", r"\\b\y")
    ccd = settings(
        VHDLocations=[r"\\a\x"],
        CCDLocations=[
            r'type=smb,name="central",connectionString=\\anq-central.contoso.local\dr\fslogix;'
            r"type=smb,connectionString=\\anq-east.contoso.local\profiles"
        ],
    )
    assert ccd.kind == "CCDLocations"
    assert ccd.locations == (r"\\anq-central.contoso.local\dr\fslogix", r"\\anq-east.contoso.local\profiles")


def test_a_location_resolves_through_a_named_server_and_a_share() -> None:
    assert resolve(r"\\anq-central.contoso.local\dr\fslogix", NAMES, SHARES) == "/profiles-dr/fslogix"
    assert resolve(r"\\10.2.0.6\PROFILES", NAMES, SHARES) == "/profiles/fslogix"  # share names are case-insensitive
    assert resolve(r"\\anq-east.contoso.local\dr\fslogix", NAMES, SHARES) is None  # another cluster
    assert resolve(r"\\10.2.0.6\missing", NAMES, SHARES) is None
    assert expected("/profiles-dr/fslogix", NAMES, SHARES) == r"\\anq-central.contoso.local\dr\fslogix"
    assert expected("/elsewhere", NAMES, SHARES) is None


@pytest.mark.parametrize(
    ("values", "fragment"),
    [
        ({"VHDLocations": [r"\\anq-central.contoso.local\profiles"]}, r"looks for profiles in \\anq-central.contoso.local\profiles"),
        ({}, "looks for profiles in no location"),
        ({"Enabled": 0, "VHDLocations": [r"\\10.2.0.6\dr\fslogix"]}, "not enabled on host avd-central-001"),
    ],
)
def test_the_problem_names_the_pool_host_locations_and_the_missing_path(values: dict[str, object], fragment: str) -> None:
    problem = check("hp-central-pooled", settings(**values), "/profiles-dr/fslogix", "anq-central", NAMES, SHARES)
    assert problem is not None and fragment in problem and "hp-central-pooled" in problem
    if values.get("Enabled", 1):
        assert r"\\anq-central.contoso.local\dr\fslogix" in problem and "/profiles-dr/fslogix on anq-central" in problem


def test_a_pool_passes_when_any_location_leads_to_the_replica() -> None:
    ok = settings(VHDLocations=[r"\\anq-central.contoso.local\profiles", r"\\10.2.0.6\dr\fslogix"])
    assert check("hp", ok, "/profiles-dr/fslogix", "anq-central", NAMES, SHARES) is None
    assert "no SMB share" in (check("hp", ok, "/nowhere", "anq-central", NAMES, SHARES) or "")
    assert "smb_endpoints" in (check("hp", ok, "/profiles-dr/fslogix", "anq-central", [], SHARES) or "")


def test_the_script_only_reads_and_its_output_round_trips() -> None:
    text = "\n".join(SCRIPT)
    assert "Get-ItemProperty" in text and "ConvertTo-Json" in text
    assert not any(verb in text for verb in ("Set-", "New-", "Remove-", "Invoke-", "Start-"))
    read = Settings.from_output("h", "t", '{"Enabled":1,"VHDLocations":"\\\\\\\\a\\\\x","ProfileType":0}')
    assert read.locations == (r"\\a\x",) and Settings.from_json(read.to_json()) == read
    with pytest.raises(ValueError, match="printed no JSON"):
        Settings.from_output("h", "t", "Access is denied.")
    with pytest.raises(ValueError, match="not an object"):
        Settings.from_output("h", "t", "[1]")
    with pytest.raises(ValueError, match="unexpected FSLogix values"):
        Settings.from_values("h", "t", {"Enabled": "yes"})
    assert container_name("Ana.Smith@contoso.com") == "profile_ana.smith.vhdx"
