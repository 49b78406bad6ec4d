"""Simulated IB Gateway speaking the TWS API socket protocol (see docs/simulator.md)."""

from src.simulator.harness import SimulatedGateway

__all__ = ["SimulatedGateway"]
