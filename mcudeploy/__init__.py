"""mcudeploy: int8 neural networks on Cortex-M through CMSIS-NN, verified bit-exactly on the device."""

__version__ = "0.1.0"
