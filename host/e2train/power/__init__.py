"""Power meters: serial readers (Watts Up? PRO, RDTech UM24C/UM25C/UM34C, SCPI WT310), software
counters (RAPL, NVML), pty simulators, an append-only CSV recorder and the window API."""

from .monitor import CounterSource, EnergyMonitor, Measurement, MeterSource, integrate
from .recorder import CsvRecorder, read_csv
from .sample import DropCounter, Limits, MeterError, MeterUnavailable, Sample
from .serial_meter import METERS, SerialMeter, open_meter

__all__ = [
    "CounterSource", "CsvRecorder", "DropCounter", "EnergyMonitor", "Limits", "METERS", "Measurement",
    "MeterError", "MeterSource", "MeterUnavailable", "Sample", "SerialMeter", "integrate", "open_meter",
    "read_csv",
]
