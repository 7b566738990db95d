"""The independent oracle: the TFLite-Micro interpreter, run on the host from its Python package."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from tflite_micro.python.tflite_micro import runtime

DEFAULT_ARENA_BYTES = 16 * 1024 * 1024


class Tflm:
    """A TFLM interpreter over one .tflite model (subgraph 0), keeping every tensor for inspection."""

    name = "tflm"

    def __init__(self, model: bytes, num_outputs: int,
                 arena_bytes: int = DEFAULT_ARENA_BYTES) -> None:
        self.num_outputs = num_outputs
        self._interpreter = runtime.Interpreter.from_bytes(
            model, arena_size=arena_bytes,
            intrepreter_config=runtime.InterpreterConfig.kPreserveAllTensors,
        )

    def invoke(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Run once; returns the outputs in model order."""
        for index, value in enumerate(inputs):
            self._interpreter.set_input(np.ascontiguousarray(value), index)
        self._interpreter.invoke()
        return [np.array(self._interpreter.get_output(i)) for i in range(self.num_outputs)]

    def tensor(self, index: int) -> np.ndarray:
        """A tensor of subgraph 0 by its index in the file, as of the last invoke."""
        found = self._interpreter.GetTensor(index, 0)
        return np.array(found["tensor_data"]).reshape(found["shape"])

    def reset(self) -> None:
        self._interpreter.reset()
