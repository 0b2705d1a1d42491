"""ARM resource ids: parse the parts Tandem needs, case-insensitively, as ARM compares them."""

from __future__ import annotations

from dataclasses import dataclass

from shared.errors import InputError


@dataclass(frozen=True)
class ResourceId:
    """/subscriptions/{subscription}/resourceGroups/{resource_group}/providers/{namespace}/{type}/{name}[/...]."""

    subscription: str
    resource_group: str
    namespace: str
    type: str
    name: str

    @classmethod
    def parse(cls, resource_id: str) -> ResourceId:
        """Parse a resource id; InputError when it is not one."""
        parts = resource_id.strip("/").split("/")
        lower = [p.lower() for p in parts]
        try:
            sub = parts[lower.index("subscriptions") + 1]
            rg = parts[lower.index("resourcegroups") + 1]
            p = lower.index("providers")
            namespace, type_, name = parts[p + 1], parts[p + 2], parts[p + 3]
        except (ValueError, IndexError):
            raise InputError(f"not an ARM resource id: {resource_id!r}") from None
        return cls(sub, rg, namespace, type_, name)

    def __str__(self) -> str:
        return (
            f"/subscriptions/{self.subscription}/resourceGroups/{self.resource_group}"
            f"/providers/{self.namespace}/{self.type}/{self.name}"
        )
