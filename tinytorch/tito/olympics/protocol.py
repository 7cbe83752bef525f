"""Message framing between the grader (parent) and a sandboxed worker (child). Never pickle.

A message is a JSON header plus zero or more numpy arrays:

    8 bytes  big-endian length H of the header
    H bytes  UTF-8 JSON object; its "arrays" entry lists the byte length of each array that follows
    ...      each array as the bytes of np.save (the .npy format), read back with allow_pickle=False

The parent treats everything a worker sends as untrusted: sizes are capped before anything is
allocated, JSON is parsed with json.loads (no objects are built from it), arrays are .npy bytes
loaded with allow_pickle=False and must hold numbers, and every read from a worker has a deadline.
The same care applies to what else a worker hands over: its outputs (predicted_labels), its state_dict
(state_summary of the arrays it sends, or read_state_file of a file it wrote) and its own timings, which are
only cross-checked against the parent's (timing_check).

Every input is bounded before it is parsed: a header's size (HEADER_LIMIT) and nesting (HEADER_DEPTH_LIMIT, a
pre-scan, so json.loads never recurses deeply); an array's .npy header (NPY_HEADER_LIMIT bytes, NPY_MAX_DIMS
dimensions, a numeric dtype) and its claimed shape, whose bytes must equal the bytes actually present before
anything is allocated; a state file's size, and its kind (lstat first: a FIFO, socket or device is never opened).
"""
from __future__ import annotations

import ast
import io
import json
import math
import os
import re
import select
import stat
import struct
import time
import zipfile
from pathlib import Path

import numpy as np

HEADER_LIMIT = 1 << 20            # 1 MiB of JSON is far more than any honest message needs
ARRAY_LIMIT = 256 << 20           # bytes per message of array data (a digits batch is ~16 KiB)
HEADER_DEPTH_LIMIT = 32          # levels of [ and { in a header: honest headers use 2 or 3
NPY_HEADER_LIMIT = 4096           # bytes of a .npy header (np.save writes 128 for any numeric array)
NPY_MAX_DIMS = 8                  # dimensions of an array that crosses the channel (a batch of images has 4)
_LENGTH = struct.Struct(">Q")
_NPY_MAGIC = b"\x93NUMPY"
_NPY_VERSIONS = {(1, 0): ("<H", "latin1"), (2, 0): ("<I", "latin1"), (3, 0): ("<I", "utf8")}
_NUMERIC_KINDS = "biuf"           # bool, signed/unsigned int, float: nothing that needs pickle
_OPEN_FLAGS = (os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
               | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOCTTY", 0))
# One JSON token that can hide brackets (a string: to its closing quote, or to the end of the text when it has
# none, so the scan stays linear), or one bracket. Possessive, so nothing backtracks.
_JSON_SCAN = re.compile(r'"(?:[^"\\]++|\\.?)*+(?:"|\Z)|[\[{\]}]', re.DOTALL)


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


def json_too_deep(text, limit):
    """The offset of the first [ or { that opens nesting level limit + 1 in the JSON text, or None when the text
    stays within limit levels. A linear pre-scan (brackets inside strings do not count), so json.loads is only
    ever given text it can parse without deep recursion; for text that is not valid JSON the answer may be too
    high, never too low, up to the point where json.loads stops with its error."""
    if text.count("[") + text.count("{") <= limit:
        return None
    depth = 0
    for match in _JSON_SCAN.finditer(text):
        char = text[match.start()]
        if char in "[{":
            depth += 1
            if depth > limit:
                return match.start()
        elif char in "]}":
            depth = max(depth - 1, 0)
    return None


def _no_constants(name):
    """json.loads parse_constant: NaN and Infinity are not JSON, and encode never writes them."""
    raise ValueError(f"{name} is not a JSON number (encode writes finite numbers only)")


def _decode_header(raw):
    """The header dict and the array byte lengths it announces; ProtocolError when malformed."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProtocolError(f"message header is not UTF-8 JSON: {exc}") from None
    deep = json_too_deep(text, HEADER_DEPTH_LIMIT)
    if deep is not None:
        raise ProtocolError(f"message header is nested more than {HEADER_DEPTH_LIMIT} levels deep (at byte {deep}); "
                            f"headers hold a few flat fields: send data as arrays")
    try:
        header = json.loads(text, parse_constant=_no_constants)
    except (ValueError, RecursionError, MemoryError) as exc:   # JSONDecodeError is a ValueError, so is a huge int
        raise ProtocolError(f"message header is not valid JSON: {type(exc).__name__}: {str(exc)[:200]}") from None
    if not isinstance(header, dict):
        raise ProtocolError(f"message header must be a JSON object, got {type(header).__name__}")
    lengths = header.pop("arrays", [])
    if not isinstance(lengths, list) or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0
                                                for n in lengths):
        raise ProtocolError(f"message header 'arrays' must list byte lengths, got {str(lengths)[:200]}")
    return header, lengths


def _npy_header_text(data):
    """(the .npy header's text, the offset where the array bytes start); ProtocolError when the bytes are not
    .npy or the header is longer than NPY_HEADER_LIMIT or cut short."""
    if not data.startswith(_NPY_MAGIC) or len(data) < 8:
        raise ProtocolError("an array in the message is not in .npy format (np.save bytes expected)")
    version = (data[6], data[7])
    if version not in _NPY_VERSIONS:
        raise ProtocolError(f"an array in the message is .npy format version {version[0]}.{version[1]}; only 1.0, "
                            f"2.0 and 3.0 exist (np.save bytes expected)")
    length_format, encoding = _NPY_VERSIONS[version]
    start = 8 + struct.calcsize(length_format)
    if len(data) < start:
        raise ProtocolError(f"an array in the message is truncated: {len(data)} bytes end inside its .npy header")
    (length,) = struct.unpack_from(length_format, data, 8)
    if length > NPY_HEADER_LIMIT:
        raise ProtocolError(f"an array's .npy header claims {length} bytes, over the {NPY_HEADER_LIMIT}-byte limit "
                            f"(np.save writes 128): send arrays made by np.save")
    if len(data) < start + length:
        raise ProtocolError(f"an array in the message is truncated: {len(data)} bytes end inside its "
                            f"{length}-byte .npy header")
    try:
        text = data[start:start + length].decode(encoding)
    except UnicodeDecodeError:
        raise ProtocolError("an array's .npy header is not text (np.save bytes expected)") from None
    return text, start + length


def _in_units(count):
    """" (8 TiB)"-style words for a large byte count, "" for a small one."""
    for unit, size in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20)):
        if count >= size:
            return f" ({count / size:.3g} {unit})"
    return ""


def _npy_layout(data):
    """(dtype, shape, fortran_order, offset of the array bytes) of .npy bytes, every claim checked against the
    bytes present: a numeric dtype, at most NPY_MAX_DIMS dimensions >= 0, and shape x itemsize EQUAL to the bytes
    after the header. ProtocolError otherwise. Parses the header itself (ast.literal_eval of at most
    NPY_HEADER_LIMIT printable characters nested at most 4 deep), so nothing is allocated from a claim."""
    text, offset = _npy_header_text(data)
    if not text.isascii() or not text.replace("\n", " ").isprintable():
        raise ProtocolError("an array's .npy header holds characters np.save never writes (np.save bytes expected)")
    depth = peak = 0
    for char in text:
        if char in "([{":
            depth += 1
            peak = max(peak, depth)
        elif char in ")]}":
            depth -= 1
    if peak > 4:
        raise ProtocolError(f"an array's .npy header is nested {peak} levels deep; np.save writes 2 "
                            f"(a dict holding the shape tuple)")
    try:
        meta = ast.literal_eval(text)
    except (SyntaxError, ValueError, TypeError, RecursionError, MemoryError) as exc:
        raise ProtocolError(f"an array's .npy header cannot be read ({type(exc).__name__}): np.save bytes "
                            f"expected") from None
    if not isinstance(meta, dict) or set(meta) != {"descr", "fortran_order", "shape"}:
        raise ProtocolError("an array's .npy header must be a dict of descr, fortran_order and shape "
                            "(np.save bytes expected)")
    descr, fortran, shape = meta["descr"], meta["fortran_order"], meta["shape"]
    try:
        dtype = np.dtype(descr) if isinstance(descr, str) and len(descr) <= 32 else None
    except (TypeError, ValueError, SyntaxError, OverflowError, MemoryError, RecursionError):
        dtype = None
    if dtype is None or dtype.kind not in _NUMERIC_KINDS or dtype.hasobject or dtype.names is not None \
            or dtype.shape != () or dtype.itemsize <= 0:
        shown = dtype if dtype is not None else repr(descr)[:60]
        raise ProtocolError(f"arrays must be numeric (bool/int/float): they are read with allow_pickle=False; got "
                            f"dtype {shown}: convert it with np.asarray(x, dtype=np.float32)")
    if not isinstance(fortran, bool):
        raise ProtocolError(f"an array's .npy header has fortran_order {repr(fortran)[:40]}, not True or False")
    if not isinstance(shape, tuple) or not all(isinstance(n, int) and not isinstance(n, bool) for n in shape):
        raise ProtocolError(f"an array's .npy header has shape {repr(shape)[:80]}, not a tuple of integers")
    if len(shape) > NPY_MAX_DIMS:
        raise ProtocolError(f"an array has {len(shape)} dimensions; at most {NPY_MAX_DIMS} cross the channel")
    if any(n < 0 for n in shape):
        raise ProtocolError(f"an array's .npy header has a negative dimension in shape {repr(shape)[:80]}")
    claimed = math.prod(shape) * dtype.itemsize
    present = len(data) - offset
    if claimed != present:
        raise ProtocolError(f"an array's .npy header claims shape {repr(shape)[:80]} of {dtype}, {claimed} bytes"
                            f"{_in_units(claimed)}, but {present} bytes follow it (truncated or forged): "
                            f"send arrays made by np.save")
    return dtype, shape, fortran, offset


def decode_array(data):
    """One .npy blob as an ndarray (allow_pickle=False; numeric dtypes only); ProtocolError otherwise.
    The header is checked first (_npy_layout): the array np.load then allocates is exactly the bytes present."""
    data = bytes(data)
    dtype, shape, _, _ = _npy_layout(data)
    try:
        array = np.load(io.BytesIO(data), allow_pickle=False, max_header_size=NPY_HEADER_LIMIT)
    except (ValueError, OSError, EOFError, MemoryError) as exc:
        raise ProtocolError(f"an array in the message could not be read with allow_pickle=False: {exc}") from None
    if not isinstance(array, np.ndarray) or array.dtype != dtype or array.shape != tuple(shape):
        raise ProtocolError(f"an array in the message did not load as its header says ({shape}, {dtype})")
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


def _file_kind(mode):
    """What a non-regular file is, in words."""
    for test, words in ((stat.S_ISLNK, "a symbolic link"), (stat.S_ISFIFO, "a named pipe (FIFO)"),
                        (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
                        (stat.S_ISBLK, "a block device"), (stat.S_ISDIR, "a folder")):
        if test(mode):
            return words
    return "not a regular file"


def read_state_file(path, max_bytes):
    """{"parameter_bytes", "serialized_bytes", "entries"} of the np.savez file at path, read by the parent
    (lstat first: a link, FIFO, socket or device is refused without being opened; then opened with
    O_NOFOLLOW|O_NONBLOCK and fstat-checked; size capped; members must be stored uncompressed as np.savez
    writes them, and each member's .npy header is checked (decode_array) before anything is loaded).
    ValueError saying what is wrong otherwise."""
    name = Path(path).name
    try:
        before = os.lstat(path)
        if not stat.S_ISREG(before.st_mode):
            raise ValueError(f"the state_dict file {name} could not be opened: it is {_file_kind(before.st_mode)}, "
                             f"not a regular file (it was not opened)")
        fd = os.open(path, _OPEN_FLAGS)
    except OSError as exc:
        raise ValueError(f"the state_dict file {name} could not be opened: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_size > max_bytes:
            raise ValueError(f"the state_dict file is not a regular file of at most {max_bytes} bytes "
                             f"({info.st_size} bytes)")
        data = handle.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise ValueError(f"the state_dict file is not a regular file of at most {max_bytes} bytes (it grew)")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = archive.infolist()
        if any(m.compress_type != zipfile.ZIP_STORED for m in members) or sum(m.file_size for m in members) > max_bytes:
            raise ValueError("its members are compressed or too large: it was not written by the grader's np.savez")
        arrays = []
        for member in members:
            if not member.filename.endswith(".npy"):
                raise ValueError(f"member {member.filename[:80]!r} is not a .npy array")
            try:   # stored members: reading one never yields more bytes than the file holds
                arrays.append(decode_array(archive.read(member)))
            except ProtocolError as exc:
                raise ValueError(f"member {member.filename[:80]!r}: {exc}") from None
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, NotImplementedError, RuntimeError,
            OverflowError, MemoryError) as exc:
        raise ValueError(f"the state_dict file is not a valid np.savez archive: {exc}") from None
    return {"parameter_bytes": int(sum(a.nbytes for a in arrays)), "serialized_bytes": len(data),
            "entries": len(arrays)}


class _CountingSink(io.RawIOBase):
    """A seekable file that keeps no bytes, only how far it was written (zipfile seeks back to fill in sizes)."""

    def __init__(self):
        super().__init__()
        self.position = self.size = 0

    def writable(self):
        return True

    def seekable(self):
        return True

    def write(self, data):
        length = memoryview(data).nbytes
        self.position += length
        self.size = max(self.size, self.position)
        return length

    def seek(self, offset, whence=io.SEEK_SET):
        self.position = {io.SEEK_SET: 0, io.SEEK_CUR: self.position, io.SEEK_END: self.size}[whence] + offset
        return self.position

    def tell(self):
        return self.position


def state_summary(arrays):
    """{"parameter_bytes", "serialized_bytes", "entries"} of a state_dict a worker sent as arrays ({name: array},
    e.g. dict(zip(header["names"], arrays)) of decode_array results): parameter_bytes = the arrays' nbytes summed,
    serialized_bytes = the length np.savez(BytesIO(), **arrays) would have (the same zip, written by the parent,
    counted without keeping a copy; any name works, even "file"), entries = how many. The same numbers
    read_state_file gives for the file np.savez writes. ValueError for a name that is not a string or a value
    that is not a numeric (bool/int/float) ndarray."""
    if not isinstance(arrays, dict):
        raise ValueError(f"a state is a dict of name -> numeric array, got {type(arrays).__name__}")
    for key, value in arrays.items():
        if not isinstance(key, str):
            raise ValueError(f"state entry names are strings, got {type(key).__name__} {repr(key)[:60]}")
        if not isinstance(value, np.ndarray) or value.dtype.kind not in _NUMERIC_KINDS or value.dtype.hasobject \
                or value.dtype.names is not None:
            raise ValueError(f"state entry {key[:80]!r} is not a numeric (bool/int/float) array "
                             f"(got {type(value).__name__} of dtype {getattr(value, 'dtype', '?')})")
    sink = _CountingSink()
    with zipfile.ZipFile(sink, mode="w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        for key, value in arrays.items():   # exactly what np.savez does (numpy/lib/_npyio_impl.py _savez)
            with archive.open(key + ".npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, value, allow_pickle=False)
    return {"parameter_bytes": int(sum(a.nbytes for a in arrays.values())), "serialized_bytes": sink.size,
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
