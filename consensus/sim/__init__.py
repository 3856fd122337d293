"""A deterministic fault simulator for the consensus engine.

One integer seed fixes a whole run: network delays, losses, duplicates and
partitions before GST, crashes and restarts, and Byzantine validators signing
with their own keys.  The real ``Engine`` runs in every simulated validator;
checkers then test agreement, validity, certificates, non-equivocation and
liveness after GST.
"""

from consensus.sim.scenario import Scenario
from consensus.sim.simulator import SimResult, Simulation, run_scenario

__all__ = ["Scenario", "SimResult", "Simulation", "run_scenario"]
