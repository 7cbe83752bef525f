"""Message framing between the grader (parent) and a sandboxed worker (child). Never pickle.

A message is a JSON header plus zero or more numpy arrays:

    8 bytes  big-endian length H of the header
    H bytes  UTF-8 JSON object; its "arrays" entry lists the byte length of each array that follows
    ...      each array as the bytes of np.save (the .npy format), read back with allow_pickle=False

The parent treats everything a worker sends as untrusted: sizes are capped before anything is
allocated, JSON is parsed with json.loads (no objects are built from it), arrays are .npy bytes
loaded with allow_pickle=False and must hold numbers, and every read from a worker has a deadline.
The same care applies to what else a worker hands over: its outputs (predicted_labels), its state_dict
file (read_state_file) and its own timings, which are only cross-checked against the parent's (timing_check).
"""
from __future__ import annotations

import io
import json
import os
import select
import stat
import struct
import time
import zipfile
from pathlib import Path

import numpy as np

HEADER_LIMIT = 1 << 20            # 1 MiB of JSON is far more than any honest message needs
ARRAY_LIMIT = 256 << 20           # bytes per message of array data (a digits batch is ~16 KiB)
_LENGTH = struct.Struct(">Q")
_NPY_MAGIC = b"\x93NUMPY"
_NUMERIC_KINDS = "biuf"           # bool, signed/unsigned int, float: nothing that needs pickle


class ProtocolError(Exception):
    """The other side sent something that is not a valid message (or broke the channel)."""


class ChannelClosed(ProtocolError):
    """The other side closed the channel (the worker exited or died) before a full message came."""


class ChannelTimeout(TimeoutError):
    """No complete message arrived before the deadline."""


def _npy_bytes(array):
    """array as .npy bytes; TypeError for arrays that would need pickle (object dtype)."""
    array = np.asarray(array)
    if array.dtype.kind not in _NUMERIC_KINDS:
        raise TypeError(f"only numeric arrays cross the grading channel, got dtype {array.dtype}; "
                        f"convert it with np.asarray(x, dtype=np.float32)")
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def encode(header, arrays=()):
    """The bytes of one message: header (a JSON-able dict) and numeric arrays."""
    if not isinstance(header, dict):
        raise TypeError(f"a message header is a dict, got {type(header).__name__}")
    blobs = [_npy_bytes(a) for a in arrays]
    text = json.dumps({**header, "arrays": [len(b) for b in blobs]}, allow_nan=False).encode("utf-8")
    if len(text) > HEADER_LIMIT:
        raise ValueError(f"message header is {len(text)} bytes, over the {HEADER_LIMIT}-byte limit; "
                         f"send large data as arrays")
    return b"".join([_LENGTH.pack(len(text)), text, *blobs])


def _decode_header(raw):
    """The header dict and the array byte lengths it announces; ProtocolError when malformed."""
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProtocolError(f"message header is not UTF-8 JSON: {exc}") from None
    if not isinstance(header, dict):
        raise ProtocolError(f"message header must be a JSON object, got {type(header).__name__}")
    lengths = header.pop("arrays", [])
    if not isinstance(lengths, list) or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0
                                                for n in lengths):
        raise ProtocolError(f"message header 'arrays' must list byte lengths, got {str(lengths)[:200]}")
    return header, lengths


def decode_array(data):
    """One .npy blob as an ndarray (allow_pickle=False; numeric dtypes only); ProtocolError otherwise."""
    if not data.startswith(_NPY_MAGIC):
        raise ProtocolError("an array in the message is not in .npy format (np.save bytes expected)")
    try:
        array = np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise ProtocolError(f"an array in the message could not be read with allow_pickle=False: {exc}") from None
    if not isinstance(array, np.ndarray) or array.dtype.kind not in _NUMERIC_KINDS:
        raise ProtocolError(f"arrays must be numeric (bool/int/float), got dtype {getattr(array, 'dtype', '?')}")
    return array


class _Reader:
    """Reads exact byte counts from a file descriptor, giving up at a perf_counter deadline."""

    def __init__(self, fd, deadline):
        self.fd, self.deadline = fd, deadline

    def read(self, n):
        chunks, left = [], n
        while left:
            if self.deadline is not None:
                wait = self.deadline - time.perf_counter()
                if wait <= 0 or not select.select([self.fd], [], [], wait)[0]:
                    raise ChannelTimeout(f"no complete message within the time limit ({n - left} of {n} bytes came)")
            chunk = os.read(self.fd, min(left, 1 << 20))
            if not chunk:
                raise ChannelClosed(f"the channel closed after {n - left} of {n} bytes")
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)


def recv(fd, deadline=None, array_limit=ARRAY_LIMIT):
    """(header dict, [arrays]) of the next message on fd. deadline: a time.perf_counter() value after
    which ChannelTimeout is raised (None: wait for ever, as the worker does)."""
    reader = _Reader(fd, deadline)
    (size,) = _LENGTH.unpack(reader.read(_LENGTH.size))
    if size > HEADER_LIMIT:
        raise ProtocolError(f"message header announces {size} bytes, over the {HEADER_LIMIT}-byte limit")
    header, lengths = _decode_header(reader.read(size))
    if sum(lengths) > array_limit:
        raise ProtocolError(f"message announces {sum(lengths)} bytes of arrays, over the {array_limit}-byte limit")
    return header, [decode_array(reader.read(n)) for n in lengths]


def send(fd, header, arrays=(), deadline=None):
    """Write one message to fd. With a deadline the fd is written without blocking (select for room),
    so a worker that stops reading cannot hang the parent; ChannelTimeout when time runs out."""
    data = memoryview(encode(header, arrays))
    while data:
        if deadline is not None:
            wait = deadline - time.perf_counter()
            if wait <= 0 or not select.select([], [fd], [], wait)[1]:
                raise ChannelTimeout(f"the other side did not read the message in time ({len(data)} bytes left)")
        try:
            written = os.write(fd, data)
        except BlockingIOError:
            continue
        except BrokenPipeError:
            raise ChannelClosed("the channel closed while a message was being sent") from None
        data = data[written:]


# ----------------------------------------------------------------------------------- what the parent reads from workers
def predicted_labels(outputs, n, classes=10):
    """Labels from one batch of outputs: (n, classes) finite scores -> argmax, or (n,) integer labels in
    0..classes-1. ValueError saying why otherwise (the grader's status "invalid")."""
    if outputs.shape == (n, classes) and outputs.dtype.kind in "iuf":
        bad = int((~np.isfinite(outputs)).sum()) if outputs.dtype.kind == "f" else 0
        if bad:
            raise ValueError(f"{bad} of the {outputs.size} output scores are NaN or infinite")
        return outputs.argmax(axis=1)
    if outputs.shape == (n,) and outputs.dtype.kind in "iu":
        if outputs.size and (outputs.min() < 0 or outputs.max() >= classes):
            raise ValueError(f"predicted labels must lie in 0..{classes - 1}, got {outputs.min()}..{outputs.max()}")
        return outputs.astype(np.int64)
    if outputs.shape == (n,):
        raise ValueError(f"1-D outputs must be integer class labels, got dtype {outputs.dtype}; "
                                 f"return (n, {classes}) scores or labels as ints")
    raise ValueError(f"outputs of shape {outputs.shape} (dtype {outputs.dtype}) for a batch of {n} inputs; "
                             f"expected ({n}, {classes}) scores or ({n},) integer labels")


def read_state_file(path, max_bytes):
    """{"parameter_bytes", "serialized_bytes", "entries"} of the np.savez file at path, read by the parent
    (no links followed, size capped, members must be stored uncompressed as np.savez writes them,
    allow_pickle=False). ValueError saying what is wrong otherwise."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError as exc:
        raise ValueError(f"the state_dict file {Path(path).name} could not be opened: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_size > max_bytes:
            raise ValueError(f"the state_dict file is not a regular file of at most {max_bytes} bytes "
                             f"({info.st_size} bytes)")
        data = handle.read(max_bytes + 1)
    try:
        members = zipfile.ZipFile(io.BytesIO(data)).infolist()
        if any(m.compress_type != zipfile.ZIP_STORED for m in members) or sum(m.file_size for m in members) > max_bytes:
            raise ValueError("its members are compressed or too large: it was not written by the grader's np.savez")
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            arrays = [archive[key] for key in archive.files]
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise ValueError(f"the state_dict file is not a valid np.savez archive: {exc}") from None
    if any(a.dtype.kind not in "biuf" for a in arrays):
        raise ValueError("the state_dict holds non-numeric arrays")
    return {"parameter_bytes": int(sum(a.nbytes for a in arrays)), "serialized_bytes": len(data),
            "entries": len(arrays)}


def timing_check(runs, pings):
    """The cross-check of worker-reported times against the parent's (numbers in ms). flagged when the worker
    claims more time than the parent measured, a window outside the parent's, or less time than the parent
    measured beyond what the IPC overhead explains (the baseline's own parent-minus-worker gap)."""
    def gaps(rows):
        return np.array([(t1 - t0 - (e - s)) / 1e6 for t0, t1, s, e in rows if s is not None and e is not None])

    sub, base = runs["sub"]["rows"], runs["base"]["rows"]
    wall = np.array([(t1 - t0) / 1e6 for t0, t1, _, _ in sub])
    sub_gap, base_gap = gaps(sub), gaps(base)
    unreadable = sum(s is None or e is None for _, _, s, e in sub)
    exceeds = int((sub_gap < 0).sum())
    outside = sum(s is not None and e is not None and not t0 <= s <= e <= t1 for t0, t1, s, e in sub)
    tolerance = max(1.0, 0.1 * float(np.median(wall)))
    unexplained = float(np.median(sub_gap) - np.median(base_gap)) if sub_gap.size and base_gap.size else None
    reasons = []
    if unreadable:
        reasons.append(f"{unreadable} of {len(sub)} worker timings were not integer nanoseconds")
    if exceeds:
        reasons.append(f"{exceeds} of {len(sub)} worker timings exceed the parent's wall time for the same request")
    if outside:
        reasons.append(f"{outside} of {len(sub)} worker timing windows lie outside the parent's request window "
                       f"(the clocks are the same monotonic clock, so an honest window is inside)")
    if unexplained is not None and unexplained > tolerance:
        reasons.append(f"the worker reports {unexplained:.3g} ms per request less than the parent measured beyond "
                       f"the baseline's IPC gap (tolerance {tolerance:.3g} ms): its timer was likely patched")
    median = lambda v: float(np.median(v)) if len(v) else None
    return {"method": "parent perf_counter_ns around each request vs the worker's own perf_counter_ns",
            "requests": len(sub), "calls_per_request": runs["sub"]["calls"],
            "baseline_calls_per_request": runs["base"]["calls"], "parent_request_ms_median": median(wall),
            "worker_request_ms_median": median([(e - s) / 1e6 for _, _, s, e in sub if s is not None and e is not None]),
            "gap_ms_median": median(sub_gap), "baseline_gap_ms_median": median(base_gap),
            "ipc_ping_ms_median": median(np.array(pings) / 1e6), "unexplained_ms": unexplained,
            "tolerance_ms": tolerance, "worker_exceeds_parent": exceeds, "outside_parent_window": outside,
            "unreadable": unreadable, "flagged": bool(reasons), "reasons": reasons}
