"""The ARM twin: AVD, Compute, role assignments and a managed-identity endpoint on a behavioural model."""

from local.twins.arm.api import ArmTwin
from local.twins.arm.seed import Seed, load_seed

__all__ = ["ArmTwin", "Seed", "load_seed"]
