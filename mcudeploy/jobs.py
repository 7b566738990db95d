"""Work spread over devices (`mcudeploy run --jobs N`): contiguous slices of the vectors, each on
its own device in its own thread, the results merged in vector order."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from mcudeploy.device.protocol import Link
from mcudeploy.device.runners import Devices
from mcudeploy.device.runners.base import Runner
from mcudeploy.device.session import DeviceRun, Session, open_session, run_vectors
from mcudeploy.errors import MCUDeployError
from mcudeploy.manifest import Manifest
from mcudeploy.progress import Progress
from mcudeploy.vectors import Vector

_JOIN_POLL_SECONDS = 0.1


class Jobs:
    """Runs `work(job)` for each job, in threads when there are several. The first failure sets
    `stop`, which the others check between vectors. Ctrl-C (KeyboardInterrupt in the main thread)
    stops every runner the jobs `track`ed, so that no emulator outlives the command, waits for the
    threads and re-raises."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self._runners: list[Runner] = []
        self._lock = threading.Lock()

    def track(self, runner: Runner) -> None:
        """Remember a runner a job started, to stop it on Ctrl-C."""
        with self._lock:
            self._runners.append(runner)

    def run(self, count: int, work: Callable[[int], None]) -> None:
        """Run jobs 0..count-1 and wait for all; re-raise the first job's failure, if any."""
        if count == 1:
            work(0)
            return
        failures: list[BaseException | None] = [None] * count

        def target(job: int) -> None:
            try:
                work(job)
            except BaseException as exc:
                failures[job] = exc
                self.stop.set()

        threads = [threading.Thread(target=target, args=(j,), name=f"mcudeploy-job-{j}", daemon=True)
                   for j in range(count)]
        try:
            for thread in threads:
                thread.start()
            for thread in threads:
                while thread.is_alive():
                    thread.join(_JOIN_POLL_SECONDS)
        except BaseException:
            self.stop.set()
            with self._lock:
                runners = list(self._runners)
            for runner in runners:
                runner.stop()
            for thread in threads:
                thread.join()
            raise
        failure = next((f for f in failures if f is not None), None)
        if failure is not None:
            raise failure


@dataclass(frozen=True)
class DeviceResults:
    """Every device's results in vector order; `error`: what stopped the run early (None: every
    vector ran); `link`: the links' counters added up and the vector rate; `layer_ticks`: of the
    first device's last vector."""

    run: DeviceRun
    error: MCUDeployError | None
    link: dict
    layer_ticks: tuple[int, ...]

    def instructions(self, manifest: Manifest, per_tick: float | None) -> dict:
        """Instructions per inference (and per layer, of the first device's last vector) from
        SysTick ticks, where a tick is `per_tick` instructions (QEMU -icount; None: not counted)."""
        if per_tick is None or not self.run.ticks:
            return {}
        figures: dict = {"per_inference": round(float(np.mean(self.run.ticks)) * per_tick),
                         "method": f"QEMU -icount shift=0, SysTick ticks x {per_tick}"}
        if self.layer_ticks:
            figures["per_layer"] = [
                {"layer": layer.index, "name": layer.name, "instructions": round(ticks * per_tick)}
                for layer, ticks in zip(manifest.layers, self.layer_ticks, strict=True)
            ]
        return figures


def run_on_devices(devices: Devices, manifest: Manifest, vectors: list[Vector], jobs: int,
                   invoke_timeout: float, progress: Progress) -> DeviceResults:
    """Every vector on the devices: with `jobs` > 1, contiguous slices on as many devices at once
    (a stateful model's vectors form one sequence, on one device). The results of a run that failed
    are kept up to where it failed."""
    count = 1 if manifest.variables else max(1, min(jobs, len(vectors)))
    bounds = [len(vectors) * j // count for j in range(count + 1)]
    parts = [DeviceRun() for _ in range(count)]
    sessions: list[Session] = []
    spans: list[tuple[float, float]] = []
    layer_ticks: list[tuple[int, ...]] = []
    threads = Jobs()

    def job(j: int) -> None:
        runner = devices.make(places[j], j)
        threads.track(runner)
        with open_session(runner, manifest, invoke_timeout=invoke_timeout, opened=sessions.append) as session:
            started = time.monotonic()
            run_vectors(session, vectors[bounds[j] : bounds[j + 1]], advance, into=parts[j],
                        first=bounds[j], stop=threads.stop)
            spans.append((started, time.monotonic()))
            if j == 0 and parts[0].indices:
                layer_ticks.append(session.layer_ticks())

    error = None
    try:
        with devices.acquired(count, progress.step) as places:
            advance = progress.bar(len(vectors), "vectors")
            threads.run(count, job)
    except MCUDeployError as exc:
        error = exc
    finally:
        progress.close()
    run = DeviceRun()
    for part in parts:
        run.extend(part)
    links = _link_figures([s.link for s in sessions], spans, len(run.indices))
    return DeviceResults(run, error, links, layer_ticks[0] if layer_ticks else ())


def _link_figures(links: list[Link], spans: list[tuple[float, float]], vectors: int) -> dict:
    """The links' counters added up, and the vector rate over the time the jobs ran vectors."""
    figures: dict = {}
    for link in links:
        for name, value in vars(link.stats).items():
            merge = min if name == "smallest_chunk" else (lambda a, b: a + b)
            figures[name] = merge(figures[name], value) if name in figures else value
    seconds = max(e for _, e in spans) - min(s for s, _ in spans) if spans else 0.0
    return {**figures, "jobs": len(links), "seconds": round(seconds, 3),
            "vectors_per_second": round(vectors / seconds, 2) if seconds > 0 else 0.0}
