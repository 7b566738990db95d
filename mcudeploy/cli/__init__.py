"""The `mcudeploy` command: one module per subcommand, each with `add_arguments` and `run`.

This module imports nothing heavy: the subcommands (and with them numpy, onnxruntime, TFLM) are
imported by `main` once Ctrl-C and SIGTERM are handled, so that an interrupt during start-up ends in
one line too.
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
from collections.abc import Sequence

from mcudeploy import __version__
from mcudeploy.errors import MCUDeployError
from mcudeploy.interrupts import Terminated, interruptible

SUBCOMMANDS = ("build", "run", "flash", "bench", "boards")

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
    for name in SUBCOMMANDS:
        module = importlib.import_module(f"mcudeploy.cli.{name}")
        sub = subs.add_parser(name, help=module.HELP, description=module.__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(sub)
        sub.set_defaults(handler=module.run)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: parse, dispatch, and turn user errors, Ctrl-C and SIGTERM into one line and an
    exit status (130 for Ctrl-C, 143 for SIGTERM)."""
    with interruptible() as interrupt:
        try:
            args = parser().parse_args(argv)
            return int(args.handler(args))
        except BaseException as exc:
            # After Ctrl-C or SIGTERM, whatever it became (an import's ImportError, a link error
            # from an emulator that got the terminal's Ctrl-C too) is the interrupt.
            received = interrupt.signal
            if received is None and isinstance(exc, KeyboardInterrupt):
                received = signal.SIGTERM if isinstance(exc, Terminated) else signal.SIGINT
            if received is not None:  # plain text: the interrupt may have come amid rich's import
                word = "terminated" if received == signal.SIGTERM else "interrupted"
                print(f"{word}: nothing was written", file=sys.stderr)
                return 128 + received
            if not isinstance(exc, MCUDeployError):
                raise
            _print_error(exc)
            return exc.exit_code


def _print_error(exc: MCUDeployError) -> None:
    from rich.text import Text

    from mcudeploy import terminal

    terminal.console(stderr=True).print(Text("error:", style="bold red"), str(exc), soft_wrap=True)


if __name__ == "__main__":
    sys.exit(main())
