"""External hashers: a closed vendor binary served over JSON lines on stdin/stdout.

Protocol ``hash-harness-external/1`` (docs/external-hashers.md has the full specification):

* The harness starts ``command`` (an argv list, never a shell) once per worker process, with a
  minimal environment (``PATH``, ``HOME``, ``LANG``, ``TMPDIR`` only), and keeps it running.
* The hash length is declared in the algorithm spec (``bits``), e.g.
  ``external(label='acme', command=['acme-hash', '--jsonl'], bits=144)``.
* For each image it writes one line ``{"id": "7", "png": "<base64 PNG>"}`` (or, with
  ``transport="path"``, ``{"id": "7", "path": "/tmp/.../7.png"}``) and reads one line back:
  ``{"id": "7", "hash": "<hex or 0/1 string>", "n_bits": 256}`` with optional ``"quality"``,
  or, for a vector hasher (``measure`` one of ``l1``, ``l2``, ``cosine``, ``dims`` declared),
  ``{"id": "7", "vector": [0.12, -0.5, ...]}`` with ``dims`` finite numbers, or
  ``{"id": "7", "error": "why"}`` (a failure of that image) or
  ``{"id": "7", "excluded": "why"}`` (a counted exclusion, like PDQ's quality gate).
* A reply that is late (``timeout`` seconds; the first reply of a newly started process may take
  :data:`STARTUP_TIMEOUT` more, as it includes the program's start-up), not JSON, too long, for
  another id, or of the wrong bit length is that image's failure with the reason; the process
  is then killed and a fresh one is started for the next image, so one bad reply cannot shift
  every later answer.
"""

from __future__ import annotations

import atexit
import base64
import json
import os
import selectors
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
from PIL import Image

from harness.algorithms.base import ALGORITHMS, LabelledAlgorithm
from harness.algorithms.vectors import MAX_LENGTH, Measured, parse_vector
from harness.core.errors import HarnessError, HashExcluded, InvalidParameterError
from harness.core.params import check_choice, check_int, check_real

PROTOCOL = "hash-harness-external/1"
#: Longest reply line accepted (a 4096-bit hash in 0/1 form is about 4 KB).
MAX_REPLY_BYTES = 1 << 20
#: Environment variables passed to the hasher; nothing else of the harness's environment leaks.
ENV_KEYS = ("PATH", "HOME", "LANG", "TMPDIR")


class ExternalHasherError(HarnessError):
    """The external hasher misbehaved for one image (the reason says how)."""


#: Extra seconds allowed for the first reply of a newly started hasher: starting a program and
#: its imports can take many seconds on a busy machine, and is no fault of any one image.
STARTUP_TIMEOUT = 60.0


class _Process:
    """One running hasher with a line-oriented, deadline-bounded reader."""

    def __init__(self, command: tuple[str, ...]) -> None:
        env = {k: os.environ[k] for k in ENV_KEYS if k in os.environ}
        env["HASH_HARNESS_PROTOCOL"] = PROTOCOL
        # Lives as long as the process; closed in close(). A file, not a pipe: a chatty hasher
        # can never block on a full stderr pipe nobody reads.
        self.stderr = tempfile.TemporaryFile()  # noqa: SIM115
        try:
            self.proc = subprocess.Popen(
                list(command),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self.stderr,
                env=env,
                close_fds=True,
            )
        except OSError as exc:
            raise ExternalHasherError(f"cannot start {command[0]!r}: {exc.strerror}") from exc
        self.buffer = b""
        self.started = False  # True after the first reply: start-up is over

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stderr_tail(self) -> str:
        self.stderr.seek(0, os.SEEK_END)
        size = self.stderr.tell()
        self.stderr.seek(max(0, size - 300))
        tail = self.stderr.read().decode("utf-8", "replace").strip()
        return f"; stderr: {tail!r}" if tail else ""

    def request(self, message: dict[str, Any], timeout: float) -> dict[str, Any]:
        stdin = self.proc.stdin
        if stdin is None:
            raise ExternalHasherError("hasher has no stdin")
        try:
            stdin.write(json.dumps(message).encode() + b"\n")
            stdin.flush()
        except (BrokenPipeError, OSError) as exc:
            raise ExternalHasherError(
                f"hasher exited (code {self.proc.poll()}){self.stderr_tail()}"
            ) from exc
        line = self._readline(timeout if self.started else timeout + STARTUP_TIMEOUT)
        self.started = True
        try:
            reply = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ExternalHasherError(f"reply is not JSON: {line[:80]!r}") from exc
        if not isinstance(reply, dict):
            raise ExternalHasherError(f"reply is not a JSON object: {line[:80]!r}")
        return reply

    def _readline(self, timeout: float) -> bytes:
        if self.proc.stdout is None:
            raise ExternalHasherError("hasher has no stdout")
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        with selectors.DefaultSelector() as sel:
            sel.register(fd, selectors.EVENT_READ)
            while b"\n" not in self.buffer:
                if len(self.buffer) > MAX_REPLY_BYTES:
                    raise ExternalHasherError(f"reply longer than {MAX_REPLY_BYTES} bytes")
                left = deadline - time.monotonic()
                if left <= 0 or not sel.select(left):
                    raise ExternalHasherError(f"no reply within {timeout:g} s")
                chunk = os.read(fd, 65536)
                if not chunk:
                    code = self.proc.wait(timeout=1)
                    raise ExternalHasherError(f"hasher exited (code {code}){self.stderr_tail()}")
                self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line

    def close(self) -> None:
        if self.alive():
            self.proc.kill()
        self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()
        self.stderr.close()


#: Running hashers of this process, by label and argv (one per worker process).
_RUNNING: dict[tuple[str, ...], _Process] = {}


@atexit.register
def _stop_all() -> None:
    for proc in _RUNNING.values():
        proc.close()
    _RUNNING.clear()


def _parse_hash(text: Any, n_bits: int) -> npt.NDArray[np.bool_]:
    if not isinstance(text, str) or not text:
        raise ExternalHasherError("reply has no 'hash' string")
    if set(text) <= {"0", "1"} and len(text) == n_bits:
        return np.frombuffer(text.encode(), np.uint8) == ord("1")
    try:
        raw = bytes.fromhex(text)
    except ValueError as exc:
        raise ExternalHasherError(
            f"hash is neither hex nor a {n_bits}-character 0/1 string"
        ) from exc
    if len(raw) != (n_bits + 7) // 8:
        raise ExternalHasherError(f"hash has {8 * len(raw)} bits, declared {n_bits}")
    bits = np.unpackbits(np.frombuffer(raw, np.uint8))
    if bits[n_bits:].any():
        raise ExternalHasherError("hash has non-zero padding bits beyond n_bits")
    return bits[:n_bits].astype(bool)


# Measured's properties (distance, level_unit, always_shown) stand in for class attributes.
@ALGORITHMS.register("external")
@dataclass(frozen=True)
class External(Measured, LabelledAlgorithm):  # type: ignore[misc,override]
    """A hasher run as a separate program speaking the JSON-lines protocol (closed vendors).

    Named by its ``label`` in results (:class:`~harness.algorithms.base.LabelledAlgorithm`); how
    answers are compared (``measure``: "hamming" on ``bits``, "weighted_hamming" with ``weights``,
    or "l1", "l2", "cosine" on ``dims`` float numbers binned to ``levels``) is
    :class:`~harness.algorithms.vectors.Measured`.
    """

    name: ClassVar[str] = "external"
    standalone: ClassVar[bool] = False
    cacheable: ClassVar[bool] = False  # the vendor's binary may change behind the same argv
    # The spec leaves the argv out: moving the vendor binary or changing how it is reached is
    # not another hash (the code fingerprint still tells binaries apart).
    id_excludes: ClassVar[tuple[str, ...]] = ("command", "timeout", "transport")
    label: str = "vendor"
    command: tuple[str, ...] = ()
    timeout: float = 30.0
    transport: str = "png"
    quality_gate: int = 0

    def __post_init__(self) -> None:
        command = self.command
        if isinstance(command, list):
            command = tuple(command)
            object.__setattr__(self, "command", command)
        valid = isinstance(command, tuple) and all(isinstance(c, str) and c for c in command)
        if not command or not valid:
            raise InvalidParameterError(
                "The 'command' parameter of external must be a non-empty list of strings (argv, "
                f"no shell), e.g. command=['python', 'vendor.py']. Got {self.command!r} instead."
            )
        self.check_label()
        check_int("bits", self.bits, owner="external", min_value=1, max_value=MAX_LENGTH)
        t = check_real(
            "timeout",
            self.timeout,
            owner="external",
            min_value=0.0,
            max_value=3600.0,
            min_open=True,
        )
        object.__setattr__(self, "timeout", t)
        check_choice("transport", self.transport, owner="external", choices=("png", "path"))
        check_int("quality_gate", self.quality_gate, owner="external", min_value=0, max_value=100)
        self.check_measure("external")

    def fingerprint(self) -> dict[str, Any]:
        # The vendor's binary is opaque: its argv and the files it names identify it.
        return {**super().fingerprint(), "command": list(self.command)}

    def code_fingerprint(self) -> str:
        from harness.codehash import command_fingerprint

        return command_fingerprint(self.command, os.environ.get("PATH"))

    @property
    def _key(self) -> tuple[str, ...]:
        # Not the id: it leaves the argv out, and two commands must never share a process.
        return (self.label, *self.command)

    def _process(self) -> _Process:
        proc = _RUNNING.get(self._key)
        if proc is None or not proc.alive():
            if proc is not None:
                proc.close()
            proc = _RUNNING[self._key] = _Process(self.command)
        return proc

    def _restart(self) -> None:
        proc = _RUNNING.pop(self._key, None)
        if proc is not None:
            proc.close()

    def hash(self, image: Image.Image) -> npt.NDArray[np.uint8]:
        return self.pack(self._ask(image))

    def hash_bits(self, image: Image.Image) -> npt.NDArray[np.bool_]:
        if self.vector:
            raise HarnessError(f"{self.label} answers with vectors, not bits")
        return self._ask(image).astype(bool)

    def _ask(self, image: Image.Image) -> npt.NDArray[Any]:
        """The hasher's answer for one image: bits, or float32 values for a vector hasher."""
        proc = self._process()
        request_id = str(time.monotonic_ns())
        from transforms.codec import png_bytes  # the encoder stack only when hashing

        png = png_bytes(image)
        with tempfile.TemporaryDirectory() as tmp:
            if self.transport == "path":
                path = Path(tmp) / f"{request_id}.png"
                path.write_bytes(png)
                message = {"id": request_id, "path": str(path)}
            else:
                message = {"id": request_id, "png": base64.b64encode(png).decode()}
            try:
                reply = proc.request(message, self.timeout)
                return self._read_reply(reply, request_id)
            except ExternalHasherError:
                self._restart()  # a fresh process for the next image; this one is lost
                raise

    def _read_reply(self, reply: dict[str, Any], request_id: str) -> npt.NDArray[Any]:
        if reply.get("id") != request_id:
            raise ExternalHasherError(
                f"reply is for id {reply.get('id')!r}, expected {request_id!r}"
            )
        if "excluded" in reply:
            raise HashExcluded(f"{self.label}: {reply['excluded']}")
        if "error" in reply:
            # The hasher answered properly that it cannot hash this image: keep the process.
            raise HarnessError(f"{self.label} could not hash the image: {reply['error']}")
        bits: npt.NDArray[Any]
        if self.vector:
            try:
                bits = parse_vector(reply.get("vector"), self.dims)
            except ValueError as exc:
                raise ExternalHasherError(f"the reply's 'vector' {exc}") from exc
        elif reply.get("n_bits", self.n_bits) != self.n_bits:
            raise ExternalHasherError(
                f"reply declares n_bits {reply.get('n_bits')}, expected {self.n_bits}"
            )
        else:
            bits = _parse_hash(reply.get("hash"), self.n_bits)
        quality = reply.get("quality")
        if self.quality_gate and isinstance(quality, int | float) and quality < self.quality_gate:
            raise HashExcluded(
                f"{self.label} quality {quality} is below the gate {self.quality_gate}"
            )
        return bits
