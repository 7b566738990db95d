"""A generated model (its C library, NAME.c) + an NN library compiled natively for the host and
driven through ctypes, through the library's step-by-step API as the firmware drives it.

This runs exactly the C that goes to the device, at host speed, so that many cases can be
compared with the reference without QEMU; the QEMU tests then prove the cross-compiled path.
"""

from __future__ import annotations

import ctypes
import shutil
from pathlib import Path

import numpy as np

from mcudeploy.manifest import Manifest
from mcudeploy.nnlib import NNLibrary, host_compile

CFLAGS = ["-std=c11", "-O1", "-Wall", "-Wextra", "-Werror"]


class HostModel:
    """A generated model loaded as a host shared library."""

    def __init__(self, model_dir: Path, library: NNLibrary, manifest: Manifest) -> None:
        shared = host_compile(library, extra_sources=[model_dir / manifest.code_file], cflags=CFLAGS,
                              purpose="model")
        own = model_dir / shared.name  # a copy per model directory: its own static arena
        shutil.copyfile(shared, own)
        self.dll = ctypes.CDLL(str(own))
        self.manifest = manifest
        self.function = lambda suffix: getattr(self.dll, f"{manifest.name}_{suffix}")
        for suffix in ("input", "output"):
            self.function(suffix).restype = ctypes.c_void_p
            self.function(suffix).argtypes = (ctypes.c_uint32,)
        self.init_status = self.function("init")()

    def invoke(self, vector: tuple[np.ndarray, ...]) -> list[np.ndarray]:
        for i, (io, value) in enumerate(zip(self.manifest.inputs, vector, strict=True)):
            data = np.ascontiguousarray(value, dtype=np.int8).tobytes()
            assert len(data) == io.size
            ctypes.memmove(self.function("input")(i), data, io.size)
        for i in range(len(self.manifest.layers)):
            status = self.function("invoke_layer")(i)
            assert status == 0, f"layer {i} returned {status}"
        outputs = self.manifest.outputs
        found = [ctypes.string_at(self.function("output")(i), io.size) for i, io in enumerate(outputs)]
        return [np.frombuffer(data, dtype=io.dtype).reshape(io.shape)
                for data, io in zip(found, outputs, strict=True)]
