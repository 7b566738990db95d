"""Work spread over threads, each driving its own device (`mcudeploy run --jobs N`)."""

from __future__ import annotations

import threading
from collections.abc import Callable

from mcudeploy.device.runners.base import Runner

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
