"""The device run over the serial link, and the bit-exact comparison with the oracles."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from mcudeploy.codegen.emit import Manifest
from mcudeploy.errors import DeviceFault
from mcudeploy.protocol import INPUT, OUTPUT, Link
from mcudeploy.vectors import Vector


@dataclass
class DeviceRun:
    """Outputs and SysTick ticks per vector, as read back from the device."""

    outputs: list[list[np.ndarray]] = field(default_factory=list)
    ticks: list[int] = field(default_factory=list)


def run_vectors(
    link: Link, manifest: Manifest, vectors: Sequence[Vector], invoke_timeout: float,
    on_vector: Callable[[int], None] | None = None, into: DeviceRun | None = None,
) -> DeviceRun:
    """Send each vector, run the model, read the outputs; partial results stay in `into`."""
    result = into if into is not None else DeviceRun()
    for i, vector in enumerate(vectors):
        for index, value in enumerate(vector):
            link.write(INPUT, index, np.ascontiguousarray(value).tobytes())
        done = link.invoke(timeout=invoke_timeout)
        if done.status != 0:
            layer = manifest.layers[done.layer]
            raise DeviceLayerError(
                f"vector {i}: layer {layer.index} ({layer.op}, {layer.origin}) returned "
                f"status {done.status}"
            )
        outs = [
            np.frombuffer(link.read(OUTPUT, k, io.size), dtype=np.int8).reshape(io.shape)
            for k, io in enumerate(manifest.outputs)
        ]
        result.outputs.append(outs)
        result.ticks.append(done.ticks)
        if on_vector is not None:
            on_vector(i)
    return result


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
            diff = np.abs(d.astype(np.int32) - e.astype(np.int32))
            first = [int(i) for i in np.unravel_index(int(np.argmax(diff != 0)), d.shape)]
            found.append(Mismatch(vector, k, oracle, int((diff != 0).sum()), int(diff.max()), first))
    return found
