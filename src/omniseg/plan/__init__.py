"""Self-configuration: a dataset's fingerprint -> a training plan (the nnU-Net idea for any 2D or 3D data)."""

from omniseg.plan.fingerprint import Fingerprint, fingerprint
from omniseg.plan.measure import Candidate
from omniseg.plan.planner import Plan, make_plan

__all__ = ["Candidate", "Fingerprint", "Plan", "fingerprint", "make_plan"]
