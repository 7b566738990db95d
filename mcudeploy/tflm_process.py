"""The TFLite-Micro interpreter in a child process, so that its crash cannot take mcudeploy down.

TFLM is C++ behind a Python binding: a malformed file can make it abort (a failed TFLITE_CHECK),
dereference a bad pointer (SIGSEGV) or raise. `TflmProcess` starts one worker per model
(`python -m mcudeploy.tflm_process`), sends it requests over a pipe and reads the answers;
numpy arrays cross as pickles. When the worker dies, raises, or does not answer within the
timeout, the request raises `OracleError` naming what happened: the signal, or TFLM's message
(the worker's stderr, where TFLM prints, is kept in a temporary file).

The protocol on the worker's stdin/stdout: each message is a 4-byte little-endian length and a
pickle of a tuple. Requests: ("load", model, arena_size, config), ("invoke", inputs, output_count),
("tensor", index, subgraph), ("details", input_count, output_count), ("reset",),
("allocations",) (the recording allocator's report, printed on stderr: read it with `printed`).
Answers: ("ok", value) or ("error", text).
The worker moves its own stdout aside first, so what TFLM prints there never mixes with answers.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import select
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, BinaryIO

from mcudeploy.errors import OracleError

_HEADER = 4
_ROOT = Path(__file__).resolve().parent.parent


def _send(stream: BinaryIO, message: tuple) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(len(data).to_bytes(_HEADER, "little") + data)
    stream.flush()


def _read_exactly(stream: BinaryIO, size: int) -> bytes | None:
    chunks, left = [], size
    while left:
        chunk = stream.read(left)
        if not chunk:
            return None
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _receive(stream: BinaryIO) -> tuple | None:
    header = _read_exactly(stream, _HEADER)
    if header is None:
        return None
    body = _read_exactly(stream, int.from_bytes(header, "little"))
    return None if body is None else pickle.loads(body)


class TflmProcess:
    """One TFLM interpreter over one model, in a worker process. `config` is the name of a
    `runtime.InterpreterConfig` member (kPreserveAllTensors, kAllocationRecording)."""

    def __init__(self, model: bytes, arena_size: int, config: str = "kPreserveAllTensors",
                 timeout: float = 120.0) -> None:
        self.timeout = timeout
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 (kept open as long as the worker)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            filter(None, [str(_ROOT), os.environ.get("PYTHONPATH")]))}
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "mcudeploy.tflm_process"], stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=self._stderr, env=env, start_new_session=True,
            )
        except OSError as exc:
            self._stderr.close()
            raise OracleError(f"TFLM's worker process could not start: {exc}") from exc
        try:
            self._request("load", model, arena_size, config, doing="loading the model")
        except BaseException:
            self.close()
            raise

    @property
    def pid(self) -> int:
        """The worker's process id."""
        return self._process.pid

    def invoke(self, inputs: list[Any], outputs: int) -> list[Any]:
        """Set the inputs, invoke, and return the first `outputs` outputs."""
        return self._request("invoke", inputs, outputs, doing="invoking the model")

    def tensor(self, index: int, subgraph: int = 0) -> dict:
        """`GetTensor(index, subgraph)`: the tensor's data, shape and details."""
        return self._request("tensor", index, subgraph, doing=f"reading tensor {index}")

    def details(self, inputs: int, outputs: int) -> tuple[list[dict], list[dict]]:
        """The details (dtype, shape, quantization) of so many inputs and outputs."""
        return self._request("details", inputs, outputs, doing="reading the input and output details")

    def reset(self) -> None:
        self._request("reset", doing="resetting the interpreter")

    def print_allocations(self) -> None:
        """The recording allocator's report (config kAllocationRecording), printed on stderr."""
        self._request("allocations", doing="printing the allocations")

    def printed(self) -> str:
        """Everything the worker printed on stderr so far."""
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace")

    def close(self) -> str:
        """Stop the worker (closing its input ends its loop); returns what it printed on stderr."""
        if self._stderr.closed:
            return ""
        with contextlib.suppress(OSError):
            self._process.stdin.close()
        try:
            self._process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process.stdout.close()
        text = self.printed()
        self._stderr.close()
        return text

    def __enter__(self) -> TflmProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        if getattr(self, "_process", None) is not None:
            self.close()

    def _request(self, *message: Any, doing: str) -> Any:
        if self._process.poll() is not None:
            raise OracleError(f"TFLM is not running ({self._death()}) before {doing}")
        try:
            _send(self._process.stdin, message)
        except (BrokenPipeError, OSError):
            raise OracleError(f"TFLM {self._death()} while {doing}") from None
        ready, _, _ = select.select([self._process.stdout], [], [], self.timeout)
        if not ready:
            self._process.kill()
            self._process.wait()
            raise OracleError(f"TFLM did not answer within {self.timeout:g} s while {doing}")
        answer = _receive(self._process.stdout)
        if answer is None:
            raise OracleError(f"TFLM {self._death()} while {doing}")
        status, value = answer
        if status != "ok":
            printed = self._last_words()
            raise OracleError(f"TFLM refused the model while {doing}: {value}"
                              + (f" (it printed: {printed})" if printed else ""))
        return value

    def _death(self) -> str:
        """How the worker ended, in words: the signal's name, TFLM's last words."""
        try:
            status = self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            status = self._process.wait()
        if status < 0:
            try:
                how = f"crashed ({signal.Signals(-status).name})"
            except ValueError:
                how = f"crashed (signal {-status})"
        else:
            how = f"exited with status {status}"
        printed = self._last_words()
        return f"{how}; it printed: {printed}" if printed else how

    def _last_words(self, limit: int = 300) -> str:
        """What the worker printed on stderr, on one line, its end only."""
        lines = [line.strip() for line in self.printed().splitlines()]
        text = " | ".join(line for line in lines if line)
        return text if len(text) <= limit else "..." + text[-limit:]


def _serve(requests: BinaryIO, answers: BinaryIO) -> None:
    """The worker's loop: one interpreter, built by the first request."""
    import numpy as np
    from tflite_micro.python.tflite_micro import runtime

    interpreter = None
    while (message := _receive(requests)) is not None:
        kind, *args = message
        try:
            if kind == "load":
                model, arena_size, config = args
                interpreter = runtime.Interpreter.from_bytes(
                    model, arena_size=arena_size,
                    intrepreter_config=getattr(runtime.InterpreterConfig, config))
                value = None
            elif kind == "invoke":
                inputs, outputs = args
                for index, array in enumerate(inputs):  # (ascontiguousarray makes a scalar 1-D)
                    interpreter.set_input(np.ascontiguousarray(array).reshape(np.shape(array)), index)
                interpreter.invoke()
                value = [np.array(interpreter.get_output(k)) for k in range(outputs)]
            elif kind == "tensor":
                found = interpreter.GetTensor(*args)
                value = {**found, "tensor_data": np.array(found["tensor_data"])}
            elif kind == "details":
                inputs, outputs = args
                value = ([interpreter.get_input_details(k) for k in range(inputs)],
                         [interpreter.get_output_details(k) for k in range(outputs)])
            elif kind == "reset":
                value = interpreter.reset()
            elif kind == "allocations":
                interpreter.print_allocations()
                value = None
            else:
                raise ValueError(f"unknown request {kind!r}")
            answer = ("ok", value)
        except Exception as exc:  # TFLM's refusals, as text for the parent
            answer = ("error", " ".join(str(exc).split()) or type(exc).__name__)
        _send(answers, answer)


if __name__ == "__main__":
    answers = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # anything printed to stdout from now on goes to stderr
    sys.stdout = sys.stderr
    _serve(sys.stdin.buffer, answers)
