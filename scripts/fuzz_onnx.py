"""Run many seeded bad float ONNX inputs through mcudeploy and count what happened to them.

    python scripts/fuzz_onnx.py [--count N] [--seed S] [--build-every K] [--run-every K] [--show M]

The cases come from tests/fuzz_onnx.py (a valid model with one fault in it or in its calibration
data); each is imported as `mcudeploy build` imports it, a refusal is also run through the CLI
(exit status 2, one line naming the file and the culprit, nothing left behind), and every K-th case
that imports is also built (--build-every) or run on QEMU (--run-every; a pass must rest on finite
oracle outputs, and the device, the host reference and TFLM must agree). Prints the counts by
outcome and by fault, then the first M problems; exit status 1 if there is any problem.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from fuzz_onnx import cases, check  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000, help="number of cases (default: 2000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the cases (default: 0)")
    parser.add_argument("--build-every", type=int, default=0, metavar="K",
                        help="build every K-th case that imports (default: none)")
    parser.add_argument("--run-every", type=int, default=0, metavar="K",
                        help="run every K-th case that imports on QEMU (default: none)")
    parser.add_argument("--show", type=int, default=10, metavar="M", help="problems to print (default: 10)")
    args = parser.parse_args()
    outcomes: Counter[str] = Counter()
    faults: Counter[tuple[str, str]] = Counter()
    problems = []
    imported = 0
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="mcudeploy-fuzz-") as scratch:
        for index, case in enumerate(cases(args.seed, args.count)):
            run = bool(args.run_every) and imported % args.run_every == 0
            build = bool(args.build_every) and imported % args.build_every == 0
            outcome = check(case, Path(scratch) / f"case{index}", build=build, run=run)
            imported += outcome.kind != "refused"
            outcomes[outcome.kind] += 1
            faults[(case.name.split(":")[0], outcome.kind)] += 1
            problems += [(index, case.name, problem) for problem in outcome.problems]
    print(f"{args.count} cases from seed {args.seed} in {time.monotonic() - started:.0f} s")
    for kind, count in outcomes.most_common():
        print(f"  {count:6d}  {kind}")
    print("by fault:")
    for (fault, kind), count in sorted(faults.items()):
        print(f"  {count:6d}  {fault}: {kind}")
    print(f"problems: {len(problems)}")
    for index, name, problem in problems[: args.show]:
        print(f"  case {index} ({name}): {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
