"""One session with a device running a generated model, the only way mcudeploy talks to devices.

`open_session` starts a runner and shakes hands once: the device must speak the protocol, carry the
model just built (its hash) and have started it (its start-up check of the scratch each layer's
library call wants). The session then does what the host asks: `infer` one vector, `run_to` a layer,
read a layer's `tensor`, the `layer_ticks` of the last run and the `startup_ticks`, `reset` the
model's state. When the block ends normally the device is told to exit, and must exit with status 0.
A change to the protocol (mcudeploy.device.protocol) therefore touches this package only.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from mcudeploy.device.protocol import INPUT, OUTPUT, TENSOR, TICKS, DeviceHang, DeviceInfo, Link
from mcudeploy.device.runners.base import Runner
from mcudeploy.errors import DeviceFault, LinkError
from mcudeploy.manifest import Manifest
from mcudeploy.vectors import Vector

DEFAULT_INVOKE_TIMEOUT = 60.0


class DeviceLayerError(DeviceFault):
    """A layer's CMSIS-NN call returned an error status on the device."""

    def __init__(self, message: str, layer: int, status: int) -> None:
        super().__init__(message)
        self.layer, self.status = layer, status


class ScratchRefused(LinkError):
    """The model's start-up check failed: `layer`'s library call wants more scratch than planned."""

    def __init__(self, message: str, layer: int) -> None:
        super().__init__(message)
        self.layer = layer


@dataclass(frozen=True)
class Inference:
    """One inference: the outputs, in model order, and its SysTick ticks."""

    outputs: list[np.ndarray]
    ticks: int


class Session:
    """A device running `manifest`'s model behind `link`. `context` (e.g. `vector 3`) starts the
    message of an error the device causes; an INVOKE may take `invoke_timeout` seconds."""

    def __init__(self, link: Link, manifest: Manifest,
                 invoke_timeout: float = DEFAULT_INVOKE_TIMEOUT) -> None:
        self.link = link
        self.manifest = manifest
        self.invoke_timeout = invoke_timeout

    def handshake(self) -> DeviceInfo:
        """HELLO: the device must run the model of the manifest, and its start-up must have passed."""
        info = self.link.hello()
        if info.model_hash.hex() != self.manifest.model_hash:
            raise LinkError(f"the device runs model {info.model_hash.hex()}, "
                            f"not the one just built ({self.manifest.model_hash})")
        if info.init_status != 0:
            layer = -info.init_status - 1
            raise ScratchRefused(f"{self.manifest.describe_layer(layer)} needs more scratch than planned "
                                 "on this device", layer)
        return info

    def infer(self, vector: Vector, *, context: str = "") -> Inference:
        """Run the whole model on `vector` and read its outputs."""
        ticks = self._invoke(vector, None, context)
        outputs = [np.frombuffer(self.link.read(OUTPUT, k, io.size), dtype=io.dtype).reshape(io.shape)
                   for k, io in enumerate(self.manifest.outputs)]
        return Inference(outputs, ticks)

    def run_to(self, layer: int, vector: Vector, *, context: str = "") -> None:
        """Run layers 0..`layer` on `vector` (their outputs stay readable with `tensor`)."""
        self._invoke(vector, layer, context)

    def tensor(self, layer: int) -> bytes:
        """The raw bytes of layer `layer`'s output tensor as the device holds it now."""
        info = self.manifest.tensors[self.manifest.layers[layer].tensor]
        return self.link.read(TENSOR, info.id, info.size)

    def layer_ticks(self) -> tuple[int, ...]:
        """SysTick ticks of each layer in the last run."""
        return self.link.layer_ticks(len(self.manifest.layers))

    def startup_ticks(self) -> int:
        """SysTick ticks of the model's start-up (mcd_model_init, once after reset)."""
        return int.from_bytes(self.link.read(TICKS, 1, 4), "little")

    def reset(self) -> None:
        """Restore the model's persistent state (its variables) to their initial values."""
        self.link.reset()

    def _invoke(self, vector: Vector, stop_after: int | None, context: str) -> int:
        for index, value in enumerate(vector):
            self.link.write(INPUT, index, np.ascontiguousarray(value).tobytes())
        try:
            done = self.link.invoke(stop_after, timeout=self.invoke_timeout)
        except DeviceHang as exc:
            raise DeviceHang(_labelled(context, str(exc))) from exc
        if done.status != 0:
            raise DeviceLayerError(_labelled(context, f"{self.manifest.describe_layer(done.layer)} returned "
                                                      f"status {done.status}"), done.layer, done.status)
        return done.ticks


def _labelled(context: str, message: str) -> str:
    return f"{context}: {message}" if context else message


@contextmanager
def open_session(runner: Runner, manifest: Manifest, *, invoke_timeout: float = DEFAULT_INVOKE_TIMEOUT,
                 opened: Callable[[Session], None] | None = None) -> Iterator[Session]:
    """Start `runner` and yield a session with its device after the handshake. `opened` is called
    with the session before the handshake (to count its link's traffic however it ends). When the
    block ends normally the device is told to exit, and must exit with status 0."""
    with runner as port:
        session = Session(Link(port), manifest, invoke_timeout)
        if opened is not None:
            opened(session)
        session.handshake()
        yield session
        session.link.exit(0)
        status = runner.exit_status()
        if status != 0:
            raise DeviceFault(f"the device exited with status {status} when told to exit")


@dataclass
class DeviceRun:
    """What came back from the device: for each vector run (`indices`, in the order run), its
    outputs and its SysTick ticks."""

    indices: list[int] = field(default_factory=list)
    outputs: list[list[np.ndarray]] = field(default_factory=list)
    ticks: list[int] = field(default_factory=list)

    def extend(self, other: DeviceRun) -> None:
        self.indices += other.indices
        self.outputs += other.outputs
        self.ticks += other.ticks


def run_vectors(session: Session, vectors: Sequence[Vector], on_vector: Callable[[], None] | None = None,
                into: DeviceRun | None = None, *, first: int = 0,
                stop: threading.Event | None = None) -> DeviceRun:
    """Infer each vector in turn; results so far stay in `into`. `first` is the index of vectors[0]
    among all vectors (for messages and `DeviceRun.indices`); a set `stop` event ends the run
    before the next vector."""
    result = into if into is not None else DeviceRun()
    for i, vector in enumerate(vectors, start=first):
        if stop is not None and stop.is_set():
            break
        inference = session.infer(vector, context=f"vector {i}")
        result.indices.append(i)
        result.outputs.append(inference.outputs)
        result.ticks.append(inference.ticks)
        if on_vector is not None:
            on_vector()
    return result
