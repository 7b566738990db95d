"""Fuzz the TFLite import with many seeded mutants (tests/fuzz_tflite.py) and count the outcomes.

    python scripts/fuzz_tflite.py [--count 3000] [--seed 0] [--jobs 2] [--run-every 20]
                                  [--build-every 10] [--timeout 300]

Each mutant goes to `mcudeploy build` (refused: exit 2 naming the file and the tensor, operator or
field); of the accepted ones new to their worker, every `--run-every`-th runs on QEMU, every
`--build-every`-th is built, the others are checked against both oracles (host reference, TFLM).
The cases run in worker processes, one case at a time: a worker that dies counts its case as a
crash (with the signal), one that does not answer within `--timeout` as a hang, and is replaced.
Prints the counts by outcome and every problem (a traceback, a crash, a hang, a message that names
nothing, a pass where the oracles disagree, anything left half-written); exit status 1 if any.
"""

from __future__ import annotations

import argparse
import json
import select
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]


def _worker(cases_dir: Path, run_every: int, build_every: int) -> None:
    """Read case indices, one a line, judge each case, answer one JSON line each. Of the accepted
    mutants new to this worker, every `run_every`-th runs on QEMU and every `build_every`-th of
    the others is built."""
    from fuzz_tflite import Case, judge

    seen: set[str] = set()
    accepted = 0

    def action() -> str:
        nonlocal accepted
        accepted += 1
        if accepted % run_every == 1 or run_every == 1:
            return "run"
        return "build" if accepted % build_every == 1 or build_every == 1 else "oracles"

    work = Path(tempfile.mkdtemp(prefix="fuzz-work-"))
    for line in sys.stdin:
        index = line.strip()
        meta = json.loads((cases_dir / f"{index}.json").read_text())
        case = Case(meta["name"], meta["source"], (cases_dir / f"{index}.tflite").read_bytes())
        try:
            outcome = judge(case, work, action, seen)
            answer = {"result": outcome.result, "problems": outcome.problems}
        except Exception as exc:  # a traceback out of mcudeploy: a problem, the worker goes on
            answer = {"result": "traceback", "problems": [f"traceback: {exc!r}"]}
        print(json.dumps(answer), flush=True)


class Worker:
    """One worker process and the case it is on."""

    def __init__(self, cases_dir: Path, every: tuple[int, int]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--worker", str(cases_dir), "--run-every", str(every[0]),
             "--build-every", str(every[1])], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, start_new_session=True)
        self.case: int | None = None
        self.started = 0.0

    def give(self, index: int) -> None:
        self.case, self.started = index, time.monotonic()
        self.process.stdin.write(f"{index}\n")
        self.process.stdin.flush()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()


def _death(worker: Worker) -> str:
    status = worker.process.wait()
    if status < 0:
        return f"crash ({signal.Signals(-status).name})"
    return f"worker exit {status}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--run-every", type=int, default=20, metavar="N",
                        help="run every N-th new accepted mutant on QEMU (per worker)")
    parser.add_argument("--build-every", type=int, default=10, metavar="N",
                        help="build every N-th new accepted mutant")
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        _worker(args.worker, args.run_every, args.build_every)
        return 0
    from fuzz_tflite import cases

    started = time.monotonic()
    cases_dir = Path(tempfile.mkdtemp(prefix="fuzz-tflite-"))
    names = []
    for index, case in enumerate(cases(args.seed, args.count)):
        (cases_dir / f"{index}.tflite").write_bytes(case.data)
        (cases_dir / f"{index}.json").write_text(json.dumps({"name": case.name, "source": case.source}))
        names.append(case.name)
    todo = list(range(args.count))
    every = (args.run_every, args.build_every)
    workers = [Worker(cases_dir, every) for _ in range(args.jobs)]
    counts: Counter[str] = Counter()
    problems: list[str] = []

    def record(index: int, result: str, found: list[str]) -> None:
        counts[result] += 1
        problems.extend(f"{names[index]}: {p}" for p in found)
        done = sum(counts.values())
        if done % 100 == 0:
            print(f"{done}/{args.count} {dict(counts)}", flush=True)

    while todo or any(w.case is not None for w in workers):
        for k, w in enumerate(workers):
            if w.case is None and todo:
                index = todo.pop(0)
                try:
                    w.give(index)
                except BrokenPipeError:
                    record(index, _death(w), [f"worker died before the case: {_death(w)}"])
                    w.stop()
                    workers[k] = Worker(cases_dir, every)
        busy = {w.process.stdout: w for w in workers if w.case is not None}
        ready, _, _ = select.select(list(busy), [], [], 1.0)
        for stream in ready:
            w = busy[stream]
            line = stream.readline()
            if line:
                answer = json.loads(line)
                record(w.case, answer["result"], answer["problems"])
                w.case = None
                continue
            how = _death(w)
            record(w.case, how, [how])
            workers[workers.index(w)] = Worker(cases_dir, every)
        for k, w in enumerate(workers):
            if w.case is not None and time.monotonic() - w.started > args.timeout:
                record(w.case, "hang", [f"no answer within {args.timeout:g} s"])
                w.stop()
                workers[k] = Worker(cases_dir, every)
    for w in workers:
        w.process.stdin.close()
        w.stop()
    print(f"\n{args.count} mutants (seed {args.seed}) in {time.monotonic() - started:.0f} s:")
    for result, count in counts.most_common():
        print(f"  {result:18} {count}")
    print(f"problems: {len(problems)}")
    for problem in problems:
        print(f"  {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
