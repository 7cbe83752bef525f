"""The grading worker: runs INSIDE the sandboxed child process, `python -m tinytorch.tito.olympics.worker`.

    python -m tinytorch.tito.olympics.worker --submission DIR --state-file NAME [--memory-bytes N]
                                             [--file-bytes N] [--block-sockets]
    python -m tinytorch.tito.olympics.worker --zoo digits_cnn --state-file NAME ...   (the trusted baseline)

Order matters, and everything before step 4 is trusted code:
1. take the protocol channel: private duplicates of fd 0 (requests) and fd 1 (replies); fd 0 then reads
   /dev/null and fd 1 writes to fd 2 (stderr), so whatever the submission prints cannot corrupt the channel;
2. resource limits (RLIMIT_AS for memory, RLIMIT_FSIZE for file sizes, no core files);
3. with --block-sockets, replace socket creation by a function that refuses (the weaker fallback used when
   the OS gives no network namespace; see sandbox.network_method);
4. import the submission from its private copy and call build_model(), or load the zoo model;
5. save the model's state_dict with np.savez as NAME in the working folder (the parent reads and measures it);
6. answer requests (protocol.py): predict a batch, time N calls, ping, exit.

What the worker reports about itself is NOT trusted: the parent times every request with its own clock
and computes accuracy from its own labels. The worker's own timing uses time.perf_counter_ns looked up at
call time on purpose: a submission that patches the timer changes only this self-report, which the parent
cross-checks and flags.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
import traceback

TRACEBACK_LINES = 12


def _take_channel():
    """(read fd, write fd) of the protocol; fd 0 becomes /dev/null and fd 1 a copy of fd 2."""
    read_fd, write_fd = os.dup(0), os.dup(1)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    os.dup2(2, 1)
    return read_fd, write_fd


def _set_limits(memory_bytes, file_bytes):
    """RLIMIT_AS (address space), RLIMIT_FSIZE (largest file) and no core dumps, for this process and its children."""
    import resource

    for which, value in ((resource.RLIMIT_AS, memory_bytes), (resource.RLIMIT_FSIZE, file_bytes),
                         (resource.RLIMIT_CORE, 0)):
        if value is not None:
            resource.setrlimit(which, (value, value))


class BadOutput(Exception):
    """The model returned something that is not a numeric array (status "invalid", not a crash)."""


class _NetworkDisabled(OSError):
    """Raised by every socket function while grading without a network namespace."""


def _refuse(*args, **kwargs):
    raise _NetworkDisabled("network access is disabled while grading (TorchPerf Olympics sandbox)")


def _block_sockets():
    """Make creating a socket or resolving a name fail. In-process, so weaker than a network namespace:
    code that re-imports C internals could get around it; the grader records which method was used."""
    import _socket
    import socket

    class BlockedSocket(socket.socket):
        def __init__(self, *args, **kwargs):
            _refuse()

    for module in (socket, _socket):
        module.socket = BlockedSocket
    for name in ("create_connection", "create_server", "socketpair", "fromfd", "getaddrinfo", "gethostbyname",
                 "gethostbyname_ex", "gethostbyaddr"):
        for module in (socket, _socket):
            if hasattr(module, name):
                setattr(module, name, _refuse)


def _their_frames(exc):
    """The traceback frames of exc that are not the worker's own or the import machinery's."""
    return [frame for frame in traceback.extract_tb(exc.__traceback__)
            if frame.filename != __file__ and not frame.filename.startswith("<frozen")]


def _tail(exc):
    """The last TRACEBACK_LINES lines of exc's traceback (the submission's frames only), as one string."""
    lines = "".join(traceback.format_list(_their_frames(exc)) + traceback.format_exception_only(type(exc), exc))
    return "\n".join(lines.rstrip().splitlines()[-TRACEBACK_LINES:])


def _failure(exc, stage):
    """The error reply for an exception raised by submission code during stage."""
    status = "out of memory" if isinstance(exc, MemoryError) else "crashed"
    name, message = type(exc).__name__, " ".join(str(exc).split())[:300]
    if isinstance(exc, SystemExit):
        name, message = "SystemExit", f"the submission called sys.exit({exc.code!r})"
    own = [f for f in _their_frames(exc) if os.path.abspath(f.filename).startswith(os.getcwd() + os.sep)]
    where = f" ({os.path.relpath(own[-1].filename)}, line {own[-1].lineno})" if own else ""
    return {"type": "error", "status": status, "stage": stage, "reason": f"{name} during {stage}{where}: {message}",
            "traceback": _tail(exc)}


def _import_submission(folder):
    """The submission module, imported from folder/submission.py (its folder is appended to sys.path so
    that helper modules import, without shadowing installed packages)."""
    import importlib.util

    sys.path.append(folder)
    spec = importlib.util.spec_from_file_location("submission", os.path.join(folder, "submission.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules["submission"] = module
    spec.loader.exec_module(module)
    return module


def _build(args):
    """(model, None) or (None, error reply): the submission's build_model() or the trusted zoo model."""
    if args.zoo:
        from tinytorch.models.zoo import load_model

        return load_model(args.zoo), None
    try:
        module = _import_submission(args.submission)
    except BaseException as exc:   # the submission's own failure, reported; nothing here is swallowed
        return None, _failure(exc, "import of submission.py")
    build = getattr(module, "build_model", None)
    if not callable(build):
        return None, {"type": "error", "status": "invalid", "stage": "build_model",
                      "reason": "submission.py defines no callable build_model(); define `def build_model():`"}
    try:
        model = build()
    except BaseException as exc:
        return None, _failure(exc, "build_model()")
    if not callable(model):
        return None, {"type": "error", "status": "invalid", "stage": "build_model",
                      "reason": f"build_model() returned a {type(model).__name__}, which is not callable; return a "
                                f"tinytorch Module or a function from a numpy batch to numpy outputs"}
    return model, None


def _save_state(model, path):
    """np.savez of model.state_dict() at path: {"state": "saved"} or {"state": "none", "why": ...};
    raises for a state_dict that is not {str: numeric array}."""
    import numpy as np

    state_dict = getattr(model, "state_dict", None)
    if not callable(state_dict):
        return {"state": "none", "why": f"build_model() returned a {type(model).__name__} without state_dict(): "
                                        f"its parameters cannot be counted"}
    state = state_dict()
    if not isinstance(state, dict):
        raise BadOutput(f"state_dict() returned a {type(state).__name__}, not a dict of arrays")
    arrays = {}
    for key, value in state.items():
        array = np.asarray(getattr(value, "data", value))
        if not isinstance(key, str) or array.dtype.kind not in "biuf":
            raise BadOutput(f"state_dict() entry {key!r} is not a numeric array (dtype {array.dtype}); "
                            f"return {{name: numpy array}}")
        arrays[key] = array
    with open(path, "wb") as handle:
        np.savez(handle, **arrays)
    return {"state": "saved", "entries": len(arrays)}


class _Runner:
    """Calls the model on numpy batches: a tinytorch Module gets a Tensor in eval mode under no_grad,
    a plain callable gets the numpy array."""

    def __init__(self, model):
        from tinytorch.core.autograd import no_grad
        from tinytorch.core.layers import Module
        from tinytorch.core.tensor import Tensor

        self.model, self.no_grad, self.Tensor = model, no_grad, Tensor
        self.is_module = isinstance(model, Module)
        if self.is_module:
            model.eval()

    def __repr__(self):
        return f"_Runner({type(self.model).__name__}, {'Module' if self.is_module else 'plain callable'})"

    def prepare(self, x):
        return self.Tensor(x) if self.is_module else x

    def outputs(self, x):
        import numpy as np

        with self.no_grad():
            out = self.model(self.prepare(x))
        try:
            array = np.asarray(out.data if isinstance(out, self.Tensor) else out)
        except Exception as exc:
            raise BadOutput(f"the model's output ({type(out).__name__}) could not be read as an array: {exc}") from None
        if array.dtype.kind not in "biuf":
            raise BadOutput(f"the model returned a {type(out).__name__} that is not a numeric array "
                            f"(dtype {array.dtype}); return (n, 10) scores or (n,) integer labels")
        return array

    def time_calls(self, x, calls):
        """(start_ns, end_ns) around `calls` calls on x, from time.perf_counter_ns as it is NOW."""
        prepared, model, clock = self.prepare(x), self.model, time.perf_counter_ns
        with self.no_grad():
            start = clock()
            for _ in range(calls):
                model(prepared)
            end = clock()
        return start, end


def _serve(runner, read_fd, write_fd):
    """Answer requests until "exit" (or the channel closes)."""
    from tinytorch.tito.olympics import protocol

    while True:
        try:
            request, arrays = protocol.recv(read_fd)
        except protocol.ChannelClosed:
            return
        op, seq = request.get("op"), request.get("seq")
        if op == "exit":
            protocol.send(write_fd, {"type": "bye", "seq": seq})
            return
        if op == "ping":
            protocol.send(write_fd, {"type": "pong", "seq": seq})
            continue
        try:
            if op == "predict":
                reply = ({"type": "result", "seq": seq}, [runner.outputs(arrays[0])])
            elif op == "time":
                start, end = runner.time_calls(arrays[0], int(request["calls"]))
                reply = ({"type": "timed", "seq": seq, "start_ns": start, "end_ns": end}, [])
            else:
                reply = ({"type": "error", "status": "invalid", "stage": "protocol", "reason": f"unknown op {op!r}"}, [])
        except BadOutput as exc:
            reply = ({"type": "error", "status": "invalid", "stage": op, "reason": str(exc)[:500]}, [])
        except BaseException as exc:
            reply = (_failure(exc, f"forward ({op})"), [])
        protocol.send(write_fd, *reply)


def _arguments(argv):
    parser = argparse.ArgumentParser(prog="python -m tinytorch.tito.olympics.worker")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--submission", help="folder holding the private copy of submission.py")
    source.add_argument("--zoo", help="a trusted reference model from tinytorch.models.zoo (the baseline)")
    parser.add_argument("--state-file", required=True, help="file name (in the working folder) for the state_dict")
    parser.add_argument("--memory-bytes", type=int, default=None)
    parser.add_argument("--file-bytes", type=int, default=None)
    parser.add_argument("--block-sockets", action="store_true")
    return parser.parse_args(argv)


def main(argv=None):
    read_fd, write_fd = _take_channel()
    args = _arguments(argv)
    _set_limits(args.memory_bytes, args.file_bytes)
    if args.block_sockets:
        _block_sockets()
    from tinytorch.tito.olympics import protocol

    model, error = _build(args)
    if error is None:
        try:
            state = _save_state(model, os.path.join(os.getcwd(), args.state_file))
            runner = _Runner(model)
        except BadOutput as exc:
            error = {"type": "error", "status": "invalid", "stage": "state_dict()", "reason": str(exc)[:500]}
        except BaseException as exc:
            error = _failure(exc, "state_dict()")
    if error is not None:
        protocol.send(write_fd, error)
        return 0
    protocol.send(write_fd, {"type": "ready", "model": type(model).__name__, "is_module": runner.is_module, **state})
    _serve(runner, read_fd, write_fd)
    return 0


if __name__ == "__main__":
    sys.exit(main())
