"""e2train: energy-efficient CNN training after E2-Train (NeurIPS 2019), from PyTorch down to the ZedBoard."""

__version__ = "0.1.0"
