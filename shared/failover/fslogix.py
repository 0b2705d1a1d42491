"""Where a pool's FSLogix looks for profile containers, and whether that is where a failover puts them.

Tandem reads the settings from one running host per pool with a fixed, read-only Run Command script, and the
target cluster's SMB shares through the Qumulo client. A pool passes for a replication link when one of its
hosts' locations (`VHDLocations`, or the SMB `connectionString`s of `CCDLocations`, which win when set) is a UNC
path whose server the topology names for the target cluster, whose share exists there, and which leads to the
link's target directory. Pure functions: the steps do the reading.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

SETTINGS_KEY = r"HKLM:\SOFTWARE\FSLogix\Profiles"
VALUES = ("Enabled", "VHDLocations", "CCDLocations", "ProfileType", "FlipFlopProfileDirectoryName", "VolumeType")
# Reads the profile settings and prints them as one JSON object: nothing is written, so a retry is harmless.
SCRIPT = (
    "$ErrorActionPreference = 'Stop'",
    f"$key = '{SETTINGS_KEY}'",
    "$found = [ordered]@{}",
    "if (Test-Path $key) {",
    "  $p = Get-ItemProperty -Path $key",
    "  foreach ($n in @(" + ", ".join(f"'{v}'" for v in VALUES) + ")) { if ($null -ne $p.$n) { $found[$n] = $p.$n } }",
    "}",
    "$found | ConvertTo-Json -Compress",
)
_UNC = re.compile(r"^\\\\(?P<server>[^\\/]+)\\(?P<share>[^\\/]+)(?P<rest>(?:\\[^\\/]+)*)\\?$")
_CONNECTION = re.compile(r"connectionString=(?P<unc>[^,;]+)", re.I)


@dataclass(frozen=True)
class Unc:
    """A UNC path split: \\\\server\\share\\rest (rest with forward slashes, '' for the share's root)."""

    server: str
    share: str
    rest: str

    @classmethod
    def parse(cls, text: str) -> Unc | None:
        """None for anything that is not \\\\server\\share[\\path]."""
        match = _UNC.match(text.strip())
        if match is None:
            return None
        return cls(match["server"].lower(), match["share"], match["rest"].replace("\\", "/"))


def _strings(value: Any) -> list[str]:
    """A REG_MULTI_SZ (a list) or a REG_SZ that may hold several entries separated by ';'."""
    if isinstance(value, str):
        return [v for v in value.split(";") if v.strip()]
    if isinstance(value, list):
        return [str(v) for v in value if str(v).strip()]
    return []


@dataclass(frozen=True)
class Settings:
    """One host's FSLogix profile settings, as read."""

    host: str
    read_at: str
    enabled: bool
    kind: str  # "CCDLocations" (Cloud Cache) or "VHDLocations"
    locations: tuple[str, ...]
    profile_type: int = 0
    flip_flop: bool = False
    values: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_values(cls, host: str, read_at: str, values: dict[str, Any]) -> Settings:
        """From the registry values the script printed."""
        ccd = [m["unc"].strip().strip('"') for entry in _strings(values.get("CCDLocations")) for m in _CONNECTION.finditer(entry)]
        if ccd:
            kind, locations = "CCDLocations", ccd
        else:
            kind, locations = "VHDLocations", _strings(values.get("VHDLocations"))
        try:
            enabled, profile_type = int(values.get("Enabled", 0)) == 1, int(values.get("ProfileType", 0))
            flip_flop = int(values.get("FlipFlopProfileDirectoryName", 0)) == 1
        except (TypeError, ValueError) as exc:
            raise ValueError(f"unexpected FSLogix values on {host}: {exc}") from exc
        return cls(
            host, read_at, enabled, kind, tuple(locations), profile_type, flip_flop, {k: values[k] for k in VALUES if k in values}
        )

    @classmethod
    def from_output(cls, host: str, read_at: str, stdout: str) -> Settings:
        """From the script's standard output; ValueError when it is not the JSON object the script prints."""
        try:
            values = json.loads(stdout.strip() or "{}")
        except ValueError as exc:
            raise ValueError(f"the FSLogix settings read on {host} printed no JSON: {stdout[:120]!r}") from exc
        if not isinstance(values, dict):
            raise ValueError(f"the FSLogix settings read on {host} printed {type(values).__name__}, not an object")
        return cls.from_values(host, read_at, values)

    def to_json(self) -> dict[str, Any]:
        """Plain JSON for activities, the cache and /api/health."""
        return {**asdict(self), "locations": list(self.locations)}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Settings:
        """Back from `to_json`."""
        return cls(**{**doc, "locations": tuple(doc.get("locations") or ())})


@dataclass(frozen=True)
class Share:
    """An SMB share of the target cluster."""

    name: str
    fs_path: str


def resolve(location: str, names: Iterable[str], shares: Sequence[Share]) -> str | None:
    """The cluster directory a UNC location leads to, when its server is one of the cluster's SMB `names` and its
    share exists there; None otherwise."""
    unc = Unc.parse(location)
    if unc is None or unc.server not in {n.lower() for n in names}:
        return None
    share = next((s for s in shares if s.name.lower() == unc.share.lower()), None)
    if share is None:
        return None
    return "/" + "/".join(p for p in (share.fs_path.strip("/") + unc.rest).split("/") if p)


def expected(target_dir: str, names: Sequence[str], shares: Sequence[Share]) -> str | None:
    """A UNC path that reaches `target_dir` (the first SMB name, the share nearest the directory), if any share does."""
    best: tuple[int, str] | None = None
    for share in shares:
        root = "/" + share.fs_path.strip("/")
        if target_dir == root or target_dir.startswith(root.rstrip("/") + "/"):
            rest = target_dir[len(root.rstrip("/")) :].strip("/").replace("/", "\\")
            if best is None or len(root) > best[0]:
                best = (len(root), f"\\\\{names[0] if names else '<smb name>'}\\{share.name}" + (f"\\{rest}" if rest else ""))
    return best[1] if best else None


def check(pool: str, settings: Settings, target_dir: str, cluster: str, names: Sequence[str], shares: Sequence[Share]) -> str | None:
    """Why users moved to `pool` would not find their containers in `target_dir` on `cluster`; None when they would."""
    if not names:
        return f"the topology names no SMB endpoint (anq.smb_endpoints) for {cluster}: no UNC path can be checked"
    unc = expected(target_dir, names, shares)
    if unc is None:
        return f"no SMB share on {cluster} exposes {target_dir}: FSLogix cannot reach the replica"
    if not settings.enabled:
        return f"pool {pool}: FSLogix profiles are not enabled on host {settings.host} (Enabled is not 1)"
    if any(resolve(location, names, shares) == target_dir for location in settings.locations):
        return None
    looked = ", ".join(settings.locations) or "no location"
    return (
        f"pool {pool}: host {settings.host} looks for profiles in {looked} ({settings.kind}); none leads to "
        f"{unc} ({target_dir} on {cluster}), so moved users would get new, empty profiles"
    )


def container_name(upn: str) -> str:
    """The container file FSLogix creates for a user: Profile_<username>.VHDX (the UPN's name part)."""
    return f"Profile_{upn.split('@', 1)[0]}.VHDX".lower()
