"""Synthetic EM cohorts with ground truth: people, tags, conditions, scripted scenarios.

Everything here is simulated: coordinates only, no real addresses, names or people.
``simulate(SimConfig(...))`` returns a :class:`~simulator.engine.Simulation`; ``simulator.cli``
is the ``em-service simulate`` command.
"""

from simulator.config import SimConfig
from simulator.engine import Simulation, simulate

__all__ = ["SimConfig", "Simulation", "simulate"]
