"""A fake Huawei Cloud for the demo, the tests and the benchmarks."""

from exporter.simulator.cloud import SimulatedCloud
from exporter.simulator.faults import BodyShape, Fault, FaultKind
from exporter.simulator.server import SimulatorServer

__all__ = ["BodyShape", "Fault", "FaultKind", "SimulatedCloud", "SimulatorServer"]
