"""Generated model.c + an NN library compiled natively for the host and driven through ctypes.

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
from mcudeploy.resources import firmware_dir

CFLAGS = ["-std=c11", "-O1", "-Wall", "-Wextra", "-Werror"]


class _Buffer(ctypes.Structure):
    _fields_ = (("data", ctypes.c_void_p), ("size", ctypes.c_uint32))


class HostModel:
    """A generated model loaded as a host shared library."""

    def __init__(self, model_dir: Path, library: NNLibrary, manifest: Manifest) -> None:
        shared = host_compile(library, extra_sources=[model_dir / "model.c"], cflags=CFLAGS,
                              include_dirs=[firmware_dir() / "include"], purpose="model")
        own = model_dir / shared.name  # a copy per model directory: its own static arena
        shutil.copyfile(shared, own)
        self.dll = ctypes.CDLL(str(own))
        self.manifest = manifest
        n = len(manifest.layers)
        self.layers = (ctypes.CFUNCTYPE(ctypes.c_int32) * n).in_dll(self.dll, "mcd_layers")
        self.inputs = (_Buffer * len(manifest.inputs)).in_dll(self.dll, "mcd_inputs")
        self.outputs = (_Buffer * len(manifest.outputs)).in_dll(self.dll, "mcd_outputs")
        self.dll.mcd_model_reset()
        self.init_status = self.dll.mcd_model_init()

    def invoke(self, vector: tuple[np.ndarray, ...]) -> list[np.ndarray]:
        for buf, value in zip(self.inputs, vector, strict=True):
            data = np.ascontiguousarray(value, dtype=np.int8).tobytes()
            assert len(data) == buf.size
            ctypes.memmove(buf.data, data, buf.size)
        for i, layer in enumerate(self.layers):
            status = layer()
            assert status == 0, f"layer {i} returned {status}"
        return [
            np.frombuffer(ctypes.string_at(buf.data, buf.size), dtype=io.dtype).reshape(io.shape)
            for buf, io in zip(self.outputs, self.manifest.outputs, strict=True)
        ]
