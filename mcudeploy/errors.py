"""Errors a user can cause or meet. Each carries a one-line message naming the thing at fault.

The CLI prints `error: <message>` for these and exits non-zero; anything else is a bug and keeps
its traceback.
"""


class MCUDeployError(Exception):
    """Base class: a problem reported to the user in one line, without a traceback."""

    exit_code = 2


class ModelFormatError(MCUDeployError):
    """A model file that cannot be read (not the format it claims, truncated, inconsistent)."""


class UnsupportedError(MCUDeployError):
    """A model that is valid but uses an operator or attribute mcudeploy refuses."""


class BoardError(MCUDeployError):
    """A board file that is missing, malformed or inconsistent."""


class BuildError(MCUDeployError):
    """Code generation or the firmware build failed."""


class PlanError(MCUDeployError):
    """The model does not fit the board's memory."""


class LinkError(MCUDeployError):
    """The serial link to the device failed: no answer, corrupt data after retries, closed port."""

    exit_code = 3


class RunnerError(MCUDeployError):
    """A target that cannot be reached: its emulator or debug probe is missing, its port will not open."""

    exit_code = 3


class DeviceFault(MCUDeployError):
    """The device reported a CPU fault (HardFault and friends) or stopped unexpectedly."""

    exit_code = 3


class OracleError(MCUDeployError):
    """An oracle could not give an answer: TFLM crashed or refused the file, or an oracle's output
    is not finite. There is then no verdict: never a pass."""

    exit_code = 4


class InputError(MCUDeployError):
    """A user-supplied input (vectors, calibration data, command-line value) is unusable."""
