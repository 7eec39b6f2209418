"""The worker protocol's framing: one message with its arrays, in and out.

A message is ``length`` (u32 LE, the bytes after it), ``kind`` (u8),
``header_length`` (u32 LE), a UTF-8 JSON header and a payload holding the raw
bytes of the arrays the header lists in ``"arrays"`` (see docs/WORKER.md).

Shaped for a small per-message cost, since a step is one round trip: the
reader pulls each message into one reusable buffer with ``readinto``, and the
writer hands the header and the arrays' own memory to a single ``writev`` (or
``sendmsg``) call, so an observation or frame is never joined into a new bytes
object and nothing sits in a user-space buffer waiting for a flush. Anything
malformed raises ``ProtocolError``; the caller decides whether to answer it.

numpy is imported on the first message that carries arrays, not with this
module: a worker then says hello (and refuses a bad handshake) in a fraction
of the time numpy takes to load.
"""

from __future__ import annotations

import json
import math
import os
import socket
import struct
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, BinaryIO

if TYPE_CHECKING:
    import numpy as np

PROTOCOL_VERSION = 1
MAX_LENGTH = 64 * 1024 * 1024

HELLO = 1
WELCOME = 2
MAKE = 10
MADE = 11
RESET = 12
RESET_DONE = 13
STEP = 14
STEP_DONE = 15
RENDER = 16
RENDERED = 17
CLOSE = 18
CLOSED = 19
POLICY = 20
POLICY_READY = 21
POLICY_RESET = 22
POLICY_RESET_DONE = 23
ACT = 24
ACTED = 25
OBSERVE = 26
OBSERVED = 27
ERROR = 127

KIND_NAMES = {
    HELLO: "hello",
    WELCOME: "welcome",
    MAKE: "make",
    MADE: "made",
    RESET: "reset",
    RESET_DONE: "reset_done",
    STEP: "step",
    STEP_DONE: "step_done",
    RENDER: "render",
    RENDERED: "rendered",
    CLOSE: "close",
    CLOSED: "closed",
    POLICY: "policy",
    POLICY_READY: "policy_ready",
    POLICY_RESET: "policy_reset",
    POLICY_RESET_DONE: "policy_reset_done",
    ACT: "act",
    ACTED: "acted",
    OBSERVE: "observe",
    OBSERVED: "observed",
    ERROR: "error",
}

# The protocol's dtypes; anything else (float16, uint64, complex, objects) has
# no agreed meaning on the Rust side and must be converted or refused first.
DTYPE_NAMES = frozenset(
    ("bool", "uint8", "int8", "int16", "int32", "int64", "uint16", "uint32", "float32", "float64")
)

_np: Any = None
_wire_dtypes: dict[str, Any] = {}
# numpy's dtype.name is computed in Python on every access (microseconds);
# dtype.str ("<f4", "|u1") is a C attribute, so names are looked up by it.
# Big-endian strings are absent on purpose: those arrays are converted first.
_names_by_str: dict[str, str] = {}


def _numpy() -> Any:
    global _np
    if _np is None:
        import numpy

        for name in DTYPE_NAMES:
            dtype = numpy.dtype(name).newbyteorder("<")
            _wire_dtypes[name] = dtype
            _names_by_str[dtype.str] = name
        _np = numpy
    return _np


_PREFIX = struct.Struct("<IBI")
_LENGTH = struct.Struct("<I")
_INNER = struct.Struct("<BI")
# Linux refuses writev with more buffers than IOV_MAX (1024); a message with
# more arrays than this is joined instead.
_MAX_BUFFERS = 512


class ProtocolError(Exception):
    """Bytes that are not a valid message."""


class ServerGone(Exception):
    """The stream to the server broke. Raised only by this module's reads and
    writes, so that an environment's own broken pipe is reported as its
    exception, not taken for the server leaving."""


class Unsupported(Exception):
    """The environment cannot be hosted: answered with an error of kind ``unsupported``."""


class CannotSend(ProtocolError):
    """A message this side cannot put on the wire: too large, or an array of an unknown dtype."""


def dtype_name(dtype: np.dtype) -> str | None:
    """The protocol's name for a numpy dtype (either byte order), or None when it has none."""
    _numpy()
    return _names_by_str.get(dtype.newbyteorder("<").str)


def _reject_constant(name: str) -> Any:
    # Python's json reads NaN and Infinity, which are not JSON; the server
    # never writes them, so seeing one means the bytes are not what we think.
    raise ValueError(f"{name} is not JSON")


# One decoder for all messages: json.loads with any option builds a new one per call.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def _decode_header(raw: bytes) -> dict[str, Any]:
    try:
        header = _DECODER.decode(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise ProtocolError(f"the header is not UTF-8 JSON: {e}") from None
    if not isinstance(header, dict):
        raise ProtocolError("the header is not a JSON object")
    return header


def _array_specs(header: dict[str, Any]) -> list[tuple[np.dtype, tuple[int, ...], int]]:
    specs = header.get("arrays", [])
    if not isinstance(specs, list):
        raise ProtocolError('"arrays" is not a list')
    _numpy()
    out = []
    for i, spec in enumerate(specs):
        if not isinstance(spec, dict):
            raise ProtocolError(f"arrays[{i}] is not an object")
        dtype = _wire_dtypes.get(spec.get("dtype")) if isinstance(spec.get("dtype"), str) else None
        if dtype is None:
            raise ProtocolError(f"arrays[{i}] has an unknown dtype {spec.get('dtype')!r}")
        shape = spec.get("shape")
        if not isinstance(shape, list) or not all(
            isinstance(d, int) and not isinstance(d, bool) and 0 <= d <= MAX_LENGTH
            for d in shape
        ):
            raise ProtocolError(f"arrays[{i}] has a bad shape {shape!r}")
        size = math.prod(shape) * dtype.itemsize
        out.append((dtype, tuple(shape), size))
    return out


class Message:
    """One received message: its kind, JSON header and decoded arrays."""

    __slots__ = ("kind", "header", "arrays")

    def __init__(self, kind: int, header: dict[str, Any], arrays: list[np.ndarray]):
        self.kind = kind
        self.header = header
        self.arrays = arrays

    def array(self, value: Any) -> np.ndarray | None:
        """The array a header value ``{"$array": i}`` refers to, else None."""
        if isinstance(value, dict) and len(value) == 1 and "$array" in value:
            i = value["$array"]
            if not isinstance(i, int) or isinstance(i, bool) or not 0 <= i < len(self.arrays):
                raise ProtocolError(f"bad array reference {value!r}")
            return self.arrays[i]
        return None

    def __repr__(self) -> str:
        return f"Message({KIND_NAMES.get(self.kind, self.kind)}, {self.header!r})"


class Reader:
    """Reads messages from a binary stream (a pipe or a socket's file)."""

    def __init__(self, stream: BinaryIO, max_length: int = MAX_LENGTH):
        self._stream = stream
        self._max_length = max_length
        self._head = bytearray(4)
        self._head_view = memoryview(self._head)
        self._buffer = bytearray(64 * 1024)

    def _fill(self, view: memoryview) -> int:
        # A buffered stream normally fills the view in one call; the loop
        # covers raw streams and sockets that return short reads.
        want = len(view)
        got = self._stream.readinto(view) or 0
        while 0 < got < want:
            try:
                n = self._stream.readinto(view[got:])
            except (ConnectionResetError, ConnectionAbortedError) as e:
                raise ServerGone(str(e)) from e
            if not n:
                break
            got += n
        return got

    def read(self) -> Message | None:
        """The next message, or None when the stream ends between messages."""
        got = self._fill(self._head_view)
        if got == 0:
            return None
        if got < 4:
            raise ProtocolError("the stream ended inside a message's length")
        (length,) = _LENGTH.unpack(self._head)
        if length > self._max_length:
            raise ProtocolError(f"a message of {length} bytes is over the limit of {self._max_length}")
        if length < _INNER.size:
            raise ProtocolError(f"a message of {length} bytes is too short to hold a kind and header length")
        if length > len(self._buffer):
            self._buffer = bytearray(max(length, 2 * len(self._buffer)))
        view = memoryview(self._buffer)[:length]
        if self._fill(view) < length:
            raise ProtocolError(f"the stream ended inside a message of {length} bytes")
        kind, header_length = _INNER.unpack_from(view)
        start = _INNER.size
        if header_length > length - start:
            raise ProtocolError(f"a header of {header_length} bytes does not fit a message of {length}")
        offset = start + header_length
        header = _decode_header(bytes(view[start:offset]))
        arrays: list[np.ndarray] = []
        if "arrays" not in header:
            if offset != length:
                raise ProtocolError(f"the payload holds {length - offset} bytes, the header lists no arrays")
            return Message(kind, header, arrays)
        specs = _array_specs(header)
        needed = sum(size for _, _, size in specs)
        if needed != length - offset:
            raise ProtocolError(f"the payload holds {length - offset} bytes, the arrays need {needed}")
        for dtype, shape, size in specs:
            # Copied out, because the buffer is reused by the next read.
            flat = _np.frombuffer(view, dtype=dtype, count=size // dtype.itemsize, offset=offset)
            arrays.append(flat.reshape(shape).astype(dtype.newbyteorder("="), copy=True))
            offset += size
        return Message(kind, header, arrays)


_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)
# The "arrays" entries as JSON text, by (dtype name, shape): a step's arrays
# have the same few shapes every time, and this keeps them out of the encoder.
_spec_texts: dict[tuple[str, tuple[int, ...]], str] = {}


def _spec_text(name: str, shape: tuple[int, ...]) -> str:
    key = (name, shape)
    text = _spec_texts.get(key)
    if text is None:
        if len(_spec_texts) >= 256:
            _spec_texts.clear()
        text = _spec_texts[key] = f'{{"dtype":"{name}","shape":[{",".join(map(str, shape))}]}}'
    return text


def encode(kind: int, header: dict[str, Any], arrays: Sequence[np.ndarray] = ()) -> list:
    """The message as buffers to write in order: prefix and header, then arrays.

    ``header`` must already hold ``{"$array": i}`` wherever array ``i`` goes,
    and no ``"arrays"`` key: that is added here. JSON without NaN or
    infinities is enforced, since the server's parser rejects them.
    """
    text = _ENCODER.encode(header)
    buffers: list = [b""]
    payload = 0
    if arrays:
        np = _numpy()
        specs = []
        for array in arrays:
            if type(array) is not np.ndarray:
                array = np.asarray(array)
            name = _names_by_str.get(array.dtype.str)
            if name is None:
                # Big-endian, or a dtype the protocol lacks.
                name = dtype_name(array.dtype)
                if name is None:
                    raise CannotSend(f"arrays of dtype {array.dtype} cannot be sent")
                array = array.astype(_wire_dtypes[name])
            if not array.flags.c_contiguous:
                # Not np.ascontiguousarray: it turns a 0-d array (a Discrete
                # observation) into a 1-d one.
                array = np.array(array, order="C")
            specs.append(_spec_text(name, array.shape))
            if array.nbytes:
                # A byte view of the array's own memory: no copy before writev.
                buffers.append(array.data.cast("B"))
                payload += array.nbytes
        text = f'{text[:-1]}{"," if len(header) else ""}"arrays":[{",".join(specs)}]}}'
    raw = text.encode()
    length = _INNER.size + len(raw) + payload
    if length > MAX_LENGTH:
        raise CannotSend(f"a message of {length} bytes is over the limit of {MAX_LENGTH}")
    buffers[0] = _PREFIX.pack(length, kind, len(raw)) + raw
    return buffers


class Writer:
    """Writes whole messages to a file descriptor or a socket, one call each."""

    def __init__(self, send: Callable[[list], int]):
        self._send = send

    @classmethod
    def for_fd(cls, fd: int) -> Writer:
        return cls(lambda buffers: os.writev(fd, buffers))

    @classmethod
    def for_socket(cls, sock: socket.socket) -> Writer:
        return cls(sock.sendmsg)

    def send(self, kind: int, header: dict[str, Any], arrays: Sequence[np.ndarray] = ()) -> None:
        buffers = encode(kind, header, arrays)
        try:
            self.write(buffers)
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError) as e:
            raise ServerGone(str(e)) from e

    def write(self, buffers: list) -> None:
        if len(buffers) > _MAX_BUFFERS:
            buffers = [b"".join(buffers)]
        written = self._send(buffers)
        total = sum(map(len, buffers))
        # writev on a blocking pipe and sendmsg on a blocking socket usually
        # take everything; a signal can cut them short, so finish the rest.
        while written < total:
            rest: list = []
            skip = written
            for b in buffers:
                view = memoryview(b).cast("B")
                if skip >= view.nbytes:
                    skip -= view.nbytes
                    continue
                rest.append(view[skip:])
                skip = 0
            buffers = rest
            total -= written
            written = self._send(buffers)
