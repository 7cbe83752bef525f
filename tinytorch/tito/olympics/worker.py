"""The grading worker: runs INSIDE the sandboxed child process, `python -m tinytorch.tito.olympics.worker`.

    python -m tinytorch.tito.olympics.worker --submission DIR [--memory-bytes N] [--file-bytes N] [--block-sockets]
    python -m tinytorch.tito.olympics.worker --zoo digits_cnn ...            (the trusted baseline)

Order matters, and everything before step 4 is trusted code:
1. take the protocol channel: private duplicates of fd 0 (requests) and fd 1 (replies); fd 0 then reads
   /dev/null and fd 1 writes to fd 2 (stderr), so whatever the submission prints cannot corrupt the channel;
2. resource limits (RLIMIT_AS for memory, RLIMIT_FSIZE for file sizes, no core files); in a jail the launcher
   (jail.py) has already set the namespaces, cgroups and the unprivileged uid;
3. with --block-sockets, replace socket creation by a function that refuses (the weaker fallback used when
   the OS gives no network namespace; see sandbox.network_method);
4. note the buffers the process holds (census_before), import the submission from its copy and call
   build_model(), or load the zoo model;
5. send the model's state_dict() to the parent as arrays in the "ready" message (the parent measures them);
6. answer requests (protocol.py): predict a batch, time N calls on distinct batches, load a state into the
   model, count the arrays it holds (census), ping, exit.

What the worker reports about itself is NOT trusted: the parent times every request with its own clock
and computes accuracy from its own labels. The worker's own timing uses time.perf_counter_ns looked up at
call time on purpose: a submission that patches the timer changes only this self-report, which the parent
cross-checks and flags. The census can only raise the memory the parent counts, never lower it.
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


def _state_arrays(model):
    """({"state": "saved", "entries": n, "names": [...]}, [arrays]) of model.state_dict(), or
    ({"state": "none", "why": ...}, []) when the model has none; raises BadOutput for a state_dict that is
    not {str: numeric array}. The arrays travel to the parent in the "ready" message, which measures them
    itself (no file the submission could swap for a link, a FIFO or a forged archive)."""
    import numpy as np

    state_dict = getattr(model, "state_dict", None)
    if not callable(state_dict):
        return {"state": "none", "why": f"build_model() returned a {type(model).__name__} without state_dict(): "
                                        f"its parameters cannot be counted"}, []
    state = state_dict()
    if not isinstance(state, dict):
        raise BadOutput(f"state_dict() returned a {type(state).__name__}, not a dict of arrays")
    names, arrays = [], []
    for key, value in state.items():
        array = np.asarray(getattr(value, "data", value))
        if not isinstance(key, str) or array.dtype.kind not in "biuf":
            raise BadOutput(f"state_dict() entry {str(key)[:80]!r} is not a numeric array (dtype {array.dtype}); "
                            f"return {{name: numpy array}}")
        names.append(key[:200])
        arrays.append(np.ascontiguousarray(array))
    return {"state": "saved", "entries": len(arrays), "names": names}, arrays


def _load_state(model, names, arrays):
    """model.load_state_dict({name: array}) for a state the parent sends back (the memory check)."""
    load = getattr(model, "load_state_dict", None)
    if not callable(load):
        raise BadOutput(f"the model ({type(model).__name__}) has state_dict() but no load_state_dict(): the grader "
                        f"checks that the declared state is what computes the outputs by loading it back")
    load(dict(zip(names, arrays)))


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

    def _array(self, out):
        """One call's output as a numeric ndarray (BadOutput otherwise)."""
        import numpy as np

        try:
            array = np.array(out.data if isinstance(out, self.Tensor) else out, copy=True)
        except Exception as exc:
            raise BadOutput(f"the model's output ({type(out).__name__}) could not be read as an array: {exc}") from None
        if array.dtype.kind not in "biuf":
            raise BadOutput(f"the model returned a {type(out).__name__} that is not a numeric array "
                            f"(dtype {array.dtype}); return (n, 10) scores or (n,) integer labels")
        return array

    def outputs(self, x):
        with self.no_grad():
            out = self.model(self.prepare(x))
        return self._array(out)

    def time_batches(self, x, calls):
        """(start_ns, end_ns, outputs) for `calls` calls, each on the next len(x) // calls rows of x (distinct
        inputs, never one object twice). Each call's output is copied into an array INSIDE the timed window,
        so a lazy result cannot defer its work past the clock; the outputs go back to the parent, which
        checks them against the same rows predicted in another call."""
        import numpy as np

        if calls < 1 or len(x) % calls:
            raise BadOutput(f"a time request of {len(x)} rows cannot be split into {calls} equal calls")
        size = len(x) // calls
        prepared = [self.prepare(np.ascontiguousarray(x[k * size:(k + 1) * size])) for k in range(calls)]
        model, clock, array, outs = self.model, time.perf_counter_ns, self._array, []
        with self.no_grad():
            start = clock()
            for batch in prepared:
                outs.append(array(model(batch)))
            end = clock()
        shapes = {o.shape[1:] for o in outs}
        if len(shapes) != 1 or any(len(o) != size for o in outs):
            raise BadOutput(f"the model's outputs changed shape between calls on batches of {size} rows: "
                            f"{sorted({o.shape for o in outs})}")
        return start, end, np.concatenate(outs)


# ------------------------------------------------------------------------------------------- census
CENSUS_LIMIT = 2_000_000   # objects visited at most (the modules of numpy and tinytorch are ~100k)
_BEFORE = {}               # id -> array of every buffer reachable before the submission was imported (kept alive)
_SNAPSHOT_SEEN = {}        # objects the snapshots of trusted modules already walked (each is walked once)


def _process_roots():
    """Every module's namespace and every thread's frames: where anything the process keeps must hang."""
    roots = [vars(m) for m in list(sys.modules.values()) if hasattr(m, "__dict__")]
    for frame in sys._current_frames().values():
        while frame is not None:          # a frame's callers are not among its referents: walk them here
            roots.append(frame)
            frame = frame.f_back
    return roots


def _defined_inside(cls, folder):
    """Whether the class comes from a module whose file lies in folder (the submission's own classes)."""
    module = sys.modules.get(getattr(cls, "__module__", None) or "")
    path = getattr(module, "__file__", None)
    return isinstance(path, str) and os.path.abspath(path).startswith(folder)


def _walk(roots, buffers, keep=None, inside=None, seen=None):
    """Walk references (gc.get_referents) from roots; buffers[id] = bytes of each numpy array base and each
    bytes/bytearray over 256 bytes found (keep[id] = the object too, when given). With inside (a folder), a
    function's globals are entered only when the function was defined there. Returns (visited, complete)."""
    import gc
    import types

    import numpy as np

    seen = {} if seen is None else seen
    stack, visited = list(roots), 0
    while stack and visited < CENSUS_LIMIT:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen[id(obj)] = obj            # kept alive while seen lives, so no id is reused under it
        visited += 1
        if isinstance(obj, np.ndarray):
            base = obj
            while isinstance(base.base, np.ndarray):
                base = base.base
            buffers[id(base)] = base.nbytes
            if keep is not None:
                keep[id(base)] = base
            if base.base is not None and not isinstance(base.base, np.ndarray):
                stack.append(base.base)          # the bytes/mmap an np.frombuffer array views
            continue
        if isinstance(obj, (bytes, bytearray)):
            if len(obj) > 256:
                buffers[id(obj)] = len(obj)
                if keep is not None:
                    keep[id(obj)] = obj
            continue
        if isinstance(obj, (str, int, float, complex, bool)) or obj is None:
            continue
        if isinstance(obj, types.FunctionType):
            stack.extend(c for c in (obj.__closure__ or ()) if c is not None)
            own = inside is None or os.path.abspath(obj.__code__.co_filename).startswith(inside)
            stack.extend([obj.__defaults__, obj.__kwdefaults__, obj.__dict__] + ([obj.__globals__] if own else []))
            continue
        if isinstance(obj, types.ModuleType) and inside is not None:
            continue
        if isinstance(obj, type) and inside is not None and inside != "\0" and not _defined_inside(obj, inside):
            continue
        stack.extend(gc.get_referents(obj))
    return visited, not stack


def _own_buffers(namespace):
    """Remember (in _BEFORE) the buffers a module's namespace holds: its own constants, not the world's (other
    modules and functions' globals are not entered)."""
    _walk([namespace], {}, _BEFORE, inside="\0", seen=_SNAPSHOT_SEEN)


class _TrustedImports:
    """A sys.meta_path finder that lets the others find each module, and remembers the buffers of every trusted
    module (the package, the standard library, the venv: not the submission's folder) as soon as its own code
    has run: a library's constants are not the model's, but an array put into a library's globals later is."""

    def __init__(self, trusted):
        self.trusted = tuple(os.path.abspath(t) + os.sep for t in trusted)

    def find_spec(self, name, path=None, target=None):
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is None:
                continue
            loader, origin = spec.loader, os.path.abspath(spec.origin or "")
            if loader is not None and hasattr(loader, "exec_module") and origin.startswith(self.trusted):
                spec.loader = _Remembering(loader)
            return spec
        return None


class _Remembering:
    """A loader that runs the real one, then remembers the module's buffers (_own_buffers)."""

    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        self.loader.exec_module(module)
        _own_buffers(vars(module))

    def __getattr__(self, name):
        return getattr(self.loader, name)


def census_before(trusted):
    """Remember every buffer the process holds before the submission is imported (the library's own), and
    those of every trusted module imported later (trusted: folders of trusted code, e.g. sys.prefix)."""
    _BEFORE.clear()
    _SNAPSHOT_SEEN.clear()
    _walk(_process_roots(), {}, _BEFORE, seen=_SNAPSHOT_SEEN)
    sys.meta_path.insert(0, _TrustedImports(trusted))


def _census(model, submission_dir):
    """Bytes of the numpy arrays (and large bytes objects) the model can use: everything reachable from the
    model, plus everything reachable from ANY module or thread that was not there before the submission was
    imported (census_before): weights stashed in a library's globals, a closure or a thread count too. Each
    buffer is counted once. Trusted code, but it runs in the submission's process, so the parent only ever
    raises the memory it counts with it, and also checks that the declared state computes the outputs."""
    buffers = {}
    visited, complete = _walk([model], buffers, inside=os.path.abspath(submission_dir) + os.sep)
    everywhere = {}
    more, complete_all = _walk(_process_roots(), everywhere)
    for key, size in everywhere.items():
        if key not in _BEFORE:
            buffers[key] = size
    return {"reachable_array_bytes": int(sum(buffers.values())), "buffers": len(buffers),
            "objects_visited": visited + more, "complete": complete and complete_all}


def _serve(runner, read_fd, write_fd, submission_dir):
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
            sys.stderr.flush()
            os._exit(0)     # no interpreter teardown: with scipy loaded it takes a third of a second, per session
        if op == "ping":
            protocol.send(write_fd, {"type": "pong", "seq": seq})
            continue
        try:
            if op == "predict":
                reply = ({"type": "result", "seq": seq}, [runner.outputs(arrays[0])])
            elif op == "time":
                start, end, outs = runner.time_batches(arrays[0], int(request["calls"]))
                reply = ({"type": "timed", "seq": seq, "start_ns": start, "end_ns": end}, [outs])
            elif op == "load_state":
                _load_state(runner.model, [str(n) for n in request.get("names", [])], arrays)
                reply = ({"type": "loaded", "seq": seq}, [])
            elif op == "census":
                reply = ({"type": "census", "seq": seq, **_census(runner.model, submission_dir)}, [])
            else:
                reply = ({"type": "error", "status": "invalid", "stage": "protocol", "reason": f"unknown op {op!r}"}, [])
        except BadOutput as exc:
            reply = ({"type": "error", "status": "invalid", "stage": op, "reason": str(exc)[:500]}, [])
        except BaseException as exc:
            reply = (_failure(exc, f"{'forward' if op in ('predict', 'time') else op} ({op})"), [])
        protocol.send(write_fd, *reply)


def _arguments(argv):
    parser = argparse.ArgumentParser(prog="python -m tinytorch.tito.olympics.worker")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--submission", help="folder holding the private copy of submission.py")
    source.add_argument("--zoo", help="a trusted reference model from tinytorch.models.zoo (the baseline)")
    parser.add_argument("--state-file", default=None, help=argparse.SUPPRESS)   # older launchers: ignored
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

    if args.submission:
        import numpy  # noqa: F401  (the library's own arrays exist before the census's first look)

        import sysconfig

        import tinytorch
        import tinytorch.core.layers  # noqa: F401
        census_before([sys.prefix, sys.base_prefix, sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["purelib"],
                       os.path.dirname(os.path.abspath(tinytorch.__file__))])
    model, error = _build(args)
    if error is None:
        try:
            state, arrays = _state_arrays(model)
            runner = _Runner(model)
        except BadOutput as exc:
            error = {"type": "error", "status": "invalid", "stage": "state_dict()", "reason": str(exc)[:500]}
        except BaseException as exc:
            error = _failure(exc, "state_dict()")
    if error is not None:
        protocol.send(write_fd, error)
        return 0
    try:
        protocol.send(write_fd, {"type": "ready", "model": type(model).__name__, "is_module": runner.is_module,
                                 **state}, arrays)
    except ValueError as exc:   # a state too large for one message: the parent says so
        protocol.send(write_fd, {"type": "error", "status": "invalid", "stage": "state_dict()",
                                 "reason": f"the state_dict could not be sent to the grader: {str(exc)[:300]}"})
        return 0
    _serve(runner, read_fd, write_fd, args.submission)
    return 0


if __name__ == "__main__":
    sys.exit(main())
