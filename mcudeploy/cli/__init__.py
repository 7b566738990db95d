"""The `mcudeploy` command: one module per subcommand, each with `add_arguments` and `run`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from rich.text import Text

from mcudeploy import __version__, terminal
from mcudeploy.cli import bench, boards, build, flash, run
from mcudeploy.errors import MCUDeployError

SUBCOMMANDS = {"build": build, "run": run, "flash": flash, "bench": bench, "boards": boards}

DESCRIPTION = """\
Deploy an int8 neural network to a Cortex-M microcontroller through CMSIS-NN and prove that the
device computes exactly what the host expects.

  mcudeploy run models/tiny_cnn.tflite        build, run on QEMU (mps3-an547) and verify
  mcudeploy build model.tflite --out fw/      generate the C code and build the firmware only
  mcudeploy flash model.tflite --board nucleo-l4r5zi
                                              build for a real board and flash it (pyOCD)
  mcudeploy run model.tflite --board nucleo-l4r5zi --runner serial
                                              verify on that board over its USB serial port
  mcudeploy bench model.tflite --board mps2-an386
                                              instructions per layer on QEMU, memory vs TFLM
  mcudeploy boards                            list the boards
"""


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="mcudeploy", description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    top.add_argument("--version", action="version", version=f"mcudeploy {__version__}")
    subs = top.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, module in SUBCOMMANDS.items():
        sub = subs.add_parser(name, help=module.HELP, description=module.__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(sub)
        sub.set_defaults(handler=module.run)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: parse, dispatch, and turn user errors into one line and an exit status."""
    args = parser().parse_args(argv)
    err = terminal.console(stderr=True)
    try:
        return int(args.handler(args))
    except MCUDeployError as exc:
        err.print(Text("error:", style="bold red"), str(exc), soft_wrap=True)
        return exc.exit_code
    except KeyboardInterrupt:
        err.print(Text.assemble(("interrupted", "bold red"), ": nothing was written"))
        return 130


if __name__ == "__main__":
    sys.exit(main())
