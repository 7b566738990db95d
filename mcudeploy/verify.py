"""The device run over the serial link, and the bit-exact comparison with the oracles."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from mcudeploy.errors import DeviceFault
from mcudeploy.manifest import Manifest
from mcudeploy.protocol import INPUT, OUTPUT, DeviceHang, Link
from mcudeploy.vectors import Vector


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


def run_vectors(
    link: Link, manifest: Manifest, vectors: Sequence[Vector], invoke_timeout: float,
    on_vector: Callable[[], None] | None = None, into: DeviceRun | None = None, *, first: int = 0,
    stop: threading.Event | None = None,
) -> DeviceRun:
    """Send each vector, run the model, read the outputs; results so far stay in `into`.

    `first` is the index of vectors[0] among all vectors (for messages and `DeviceRun.indices`);
    a set `stop` event ends the run before the next vector.
    """
    result = into if into is not None else DeviceRun()
    for i, vector in enumerate(vectors, start=first):
        if stop is not None and stop.is_set():
            break
        write_inputs(link, vector)
        try:
            done = link.invoke(timeout=invoke_timeout)
        except DeviceHang as exc:
            raise DeviceHang(f"vector {i}: {exc}") from exc
        if done.status != 0:
            raise DeviceLayerError(f"vector {i}: {manifest.describe_layer(done.layer)} returned "
                                   f"status {done.status}")
        outs = [
            np.frombuffer(link.read(OUTPUT, k, io.size), dtype=io.dtype).reshape(io.shape)
            for k, io in enumerate(manifest.outputs)
        ]
        result.indices.append(i)
        result.outputs.append(outs)
        result.ticks.append(done.ticks)
        if on_vector is not None:
            on_vector()
    return result


def write_inputs(link: Link, vector: Vector) -> None:
    """Every input of one vector, in model order."""
    for index, value in enumerate(vector):
        link.write(INPUT, index, np.ascontiguousarray(value).tobytes())


class DeviceLayerError(DeviceFault):
    """A layer's CMSIS-NN call returned an error status on the device."""


@dataclass(frozen=True)
class Mismatch:
    """Where a device output differs from an oracle's."""

    vector: int
    output: int
    oracle: str
    elements: int
    max_abs_diff: int
    first_index: list[int]


def compare(
    vector: int, device: Sequence[np.ndarray], expected: Sequence[np.ndarray], oracle: str
) -> list[Mismatch]:
    """Bit-exact comparison of each output; one Mismatch per differing output."""
    found = []
    for k, (d, e) in enumerate(zip(device, expected, strict=True)):
        e = np.asarray(e).reshape(d.shape)
        if not np.array_equal(d, e):
            diff = abs_diff(d, e)
            first = [int(i) for i in np.unravel_index(int(np.argmax(diff != 0)), d.shape)]
            found.append(Mismatch(vector, k, oracle, int((diff != 0).sum()), int(diff.max()), first))
    return found


def abs_diff(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """|a - b| element by element, without integer overflow."""
    return np.abs(a.astype(np.int64) - np.asarray(b).reshape(a.shape).astype(np.int64))
