"""Generated model.c + an NN library compiled natively for the host and driven through ctypes.

This runs exactly the C that goes to the device, at host speed, so that many cases can be
compared with the reference without QEMU; the QEMU tests then prove the cross-compiled path.
"""

from __future__ import annotations

import ctypes
import hashlib
import subprocess
from pathlib import Path

import numpy as np

from mcudeploy.build import NNLibrary
from mcudeploy.manifest import Manifest
from mcudeploy.resources import firmware_dir

CFLAGS = ["-std=c11", "-O1", "-Wall", "-Wextra", "-Werror", "-shared", "-fPIC"]


class _Buffer(ctypes.Structure):
    _fields_ = (("data", ctypes.c_void_p), ("size", ctypes.c_uint32))


class HostModel:
    """A generated model loaded as a host shared library."""

    def __init__(self, model_dir: Path, library: NNLibrary, manifest: Manifest) -> None:
        sources = [model_dir / "model.c", *library.sources]
        key = hashlib.sha256(b"".join(Path(s).read_bytes() for s in sources)).hexdigest()[:12]
        so = model_dir / f"model-{key}.so"
        cmd = ["gcc", *CFLAGS, f"-I{firmware_dir() / 'include'}"]
        cmd += [f"-I{d}" for d in library.include_dirs]
        cmd += [str(s) for s in sources] + ["-o", str(so)]
        subprocess.run(cmd, check=True, capture_output=True, text=True)
        self.dll = ctypes.CDLL(str(so))
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
