"""Every input from a submission is bounded: hostile sources, JSON, protocol messages, .npy arrays, state files
and folder entries each give a clear SubmissionError / ProtocolError / ValueError, never an uncaught exception,
a huge allocation or a blocked grader (the FIFO tests run in a thread with a timeout)."""
import io
import json
import os
import shutil
import socket
import struct
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest

from tinytorch.tito.olympics import protocol
from tinytorch.tito.olympics import submission as sub
from tinytorch.tito.olympics.protocol import ProtocolError, decode_array, read_state_file, state_summary
from tinytorch.tito.olympics.submission import SubmissionError, content_sha256, copy_submission, unpack, validate

EXAMPLES = Path(sub.__file__).resolve().parents[2] / "assets" / "olympics" / "examples"
META = {"student_id": "s1", "events": ["latency_sprint"], "techniques": [], "division": "closed"}
SOURCE = "from tinytorch.models.zoo import load_model\n\n\ndef build_model():\n    return load_model('digits_cnn')\n"


def make(folder: Path, source=SOURCE, meta=None, extra=None) -> Path:
    folder.mkdir(parents=True)
    (folder / "submission.json").write_text(meta if isinstance(meta, str) else json.dumps(meta or META))
    (folder / "submission.py").write_text(source)
    for rel, data in (extra or {}).items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(data)
    return folder


def problems(folder) -> list[str]:
    with pytest.raises(SubmissionError) as info:
        validate(folder)
    assert all("\n" not in p for p in info.value.problems)
    return info.value.problems


def one_problem(folder) -> str:
    found = problems(folder)
    assert len(found) == 1, found
    return found[0]


def finishes(function, *args, seconds=5):
    """(result or exception) of function(*args) run in a thread that must finish within seconds."""
    box = {}

    def run():
        try:
            box["result"] = function(*args)
        except BaseException as exc:   # handed to the test
            box["result"] = exc
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"{function.__name__} blocked for {seconds} s"
    return box["result"]


def npy(header: str, body: bytes = b"", version=(1, 0)) -> bytes:
    """.npy bytes with a hand-written header (forged claims included)."""
    raw = header.encode("latin1")
    raw += b" " * (63 - (10 + len(raw)) % 64) + b"\n"
    return b"\x93NUMPY" + bytes(version) + struct.pack("<H", len(raw)) + raw + body


TIB8 = "{'descr': '<f8', 'fortran_order': False, 'shape': (1099511627776,), }"


# ------------------------------------------------------------------------------------------- submission.py
@pytest.mark.parametrize("source, words", [
    ("x = " + "(" * 10**6 + ")" * 10**6, "brackets open 101 levels deep at line 1"),
    ("(" * 10**6, "brackets open 101 levels deep"),
    ("x = " + "[" * 150 + "]" * 150, "the limit is 100"),
    ("x = " + "-" * 5000 + "1", "nested too deeply for Python's parser"),
    ("x = a" + ".b" * 2000, "syntax tree goes more than 200 levels deep at line 1"),
    ("".join(" " * i + "if 1:\n" for i in range(101)) + " " * 101 + "pass\n", "101 levels of indented blocks"),
    (("".join(" " * i + "if x:\n" for i in range(60)) + " " * 60 + "pass\n") * 700, "more than 100000 tokens"),
    ("x = [" + "1," * 200_000 + "]", "more than 100000 tokens"),
    ("x = 1\0", "cannot be parsed: source code string cannot contain null bytes"),
])
def test_hostile_source_is_one_clear_problem(tmp_path, source, words):
    problem = one_problem(make(tmp_path / "s", source + "\ndef build_model():\n    return 1\n"))
    assert problem.startswith("submission.py ") and words in problem, problem


def test_helper_sources_are_bounded_too(tmp_path):
    folder = make(tmp_path / "s", extra={"lib/helper.py": b"x = " + b"(" * 5000, "lib/ok.py": b"y = 1\n"})
    assert one_problem(folder).startswith("lib/helper.py is nested too deeply: brackets open 101 levels")
    (folder / "lib" / "helper.py").write_bytes(b"def f(:\n")
    assert one_problem(folder).startswith("lib/helper.py has a syntax error at line 1")


def test_strings_and_comments_do_not_count_as_nesting(tmp_path):
    source = SOURCE + "S = '(((' * 3 + \"\"\"\n" + "(" * 500 + "\n\"\"\"  # " + "[" * 500 + "\n"
    assert validate(make(tmp_path / "s", source))["embedded_bytes"] == 502   # the long string is data


# ------------------------------------------------------------------------------------------- submission.json
@pytest.mark.parametrize("text, words", [
    ("[" * 30_000 + "]" * 30_000, "nested too deeply to read: a list or object at line 1, column 21 opens level 21"),
    ('{"a":\n' * 25 + "1" + "}" * 25, "at line 21, column 1 opens level 21 (the limit is 20)"),
    ('{"student_id": "s1", "ev', "not valid JSON: Unterminated string starting at at line 1, column 22"),
    ('{"student_id": "s1",\n', "not valid JSON: Expecting property name enclosed in double quotes at line 2, column 1"),
    ("", "submission.json is empty (nothing up to line 1, column 1)"),
    ("\n\n", "submission.json is empty (nothing up to line 3, column 1)"),
])
def test_hostile_json_is_one_clear_problem(tmp_path, text, words):
    problem = one_problem(make(tmp_path / "s", meta=text))
    assert problem.startswith("submission.json ") and words in problem, problem


def test_brackets_inside_json_strings_do_not_count(tmp_path):
    meta = dict(META, techniques=["[" * 100 + "{" * 90])
    assert validate(make(tmp_path / "s", meta=json.dumps(meta)))["techniques"] == [meta["techniques"][0]]


# ------------------------------------------------------------------------------------------- protocol
def test_deeply_nested_header_is_a_protocol_error():
    for raw in (b"[" * 500_000 + b"]" * 500_000, b'{"a":' * 100_000 + b"1" + b"}" * 100_000):
        with pytest.raises(ProtocolError, match="nested more than 32 levels deep"):
            protocol._decode_header(raw)
    with pytest.raises(ProtocolError, match="not valid JSON"):
        protocol._decode_header(b'{"t": NaN}')
    with pytest.raises(ProtocolError, match="not valid JSON"):
        protocol._decode_header(b'{"t": ' + b"9" * 10_000 + b"}")
    assert protocol._decode_header(b'{"op": "[[[[", "arrays": [8]}') == ({"op": "[[[["}, [8])


def test_deep_header_through_a_pipe_is_a_protocol_error():
    read_fd, write_fd = os.pipe()
    try:
        raw = b"[" * 40 + b"]" * 40
        os.write(write_fd, struct.pack(">Q", len(raw)) + raw)
        with pytest.raises(ProtocolError, match="nested more than 32"):
            protocol.recv(read_fd, deadline=None)
    finally:
        os.close(read_fd)
        os.close(write_fd)


@pytest.mark.parametrize("data, words", [
    (npy(TIB8), "claims shape (1099511627776,) of float64, 8796093022208 bytes (8 TiB), but 0 bytes follow"),
    (npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1048576, 1048576, 1048576), }"), "but 0 bytes follow"),
    (npy("{'descr': '<f8', 'fortran_order': False, 'shape': (10,), }", b"\0" * 8), "80 bytes, but 8 bytes follow"),
    (npy("{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }", b"\0" * 16), "8 bytes, but 16 bytes follow"),
    (npy("{'descr': '<f8', 'fortran_order': False, 'shape': (-1,), }"), "negative dimension"),
    (npy("{'descr': '<f8', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,1), }", b"\0" * 8), "9 dimensions"),
    (npy("{'descr': '|O', 'fortran_order': False, 'shape': (1,), }", b"\0" * 8), "must be numeric"),
    (npy("{'descr': '<U3', 'fortran_order': False, 'shape': (1,), }", b"\0" * 12), "got dtype <U3"),
    (npy("{'descr': [('a', '<f8')], 'fortran_order': False, 'shape': (1,), }", b"\0" * 8), "must be numeric"),
    (npy("{'descr': '<f8', 'fortran_order': False, 'shape': " + "(" * 20 + ")" * 20 + ", }"), "nested 21 levels"),
    (npy("{'descr': '<f8', 'fortran_order': False, 'shape': (" + "-" * 3000 + "1,), }"), "cannot be read"),
    (npy("x" * 5000), "bytes, over the 4096-byte limit"),
    (b"\x93NUMPY\x01\x00\xff\x0f{'de", "truncated"),
    (b"\x93NUMPY\x03\x00", "truncated"),
    (b"\x93NUMPY\x09\x00" + b"\0" * 100, "version 9.0"),
    (b"\x80\x04pickle", "not in .npy format"),
])
def test_forged_npy_is_refused_before_anything_is_allocated(data, words):
    with pytest.raises(ProtocolError) as info:
        decode_array(data)
    assert words in str(info.value), str(info.value)


def test_honest_arrays_still_decode():
    for array in (np.arange(12, dtype=np.float32).reshape(3, 4), np.zeros((0, 5), np.int8), np.array(True),
                  np.asfortranarray(np.ones((2, 3))), np.arange(3, dtype=">i4")):
        buffer = io.BytesIO()
        np.save(buffer, array)
        got = decode_array(buffer.getvalue())
        assert got.dtype == array.dtype and np.array_equal(got, array)


def test_state_file_with_a_forged_member_is_a_value_error(tmp_path):
    path = tmp_path / "state.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("w.npy", npy(TIB8))
    with pytest.raises(ValueError, match=r"not a valid np.savez archive: member 'w.npy': .*8796093022208 bytes"):
        read_state_file(path, 2**20)


def test_state_file_fifo_is_refused_without_blocking(tmp_path):
    os.mkfifo(tmp_path / "state.npz")
    outcome = finishes(read_state_file, tmp_path / "state.npz", 2**20)
    assert isinstance(outcome, ValueError) and "is a named pipe (FIFO), not a regular file" in str(outcome)


def test_state_summary_matches_np_savez():
    arrays = {"layer1.weight": np.zeros((3, 4), np.float32), "q": np.arange(5, dtype=np.int8), "b": np.array(1.5)}
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    assert state_summary(arrays) == {"parameter_bytes": 48 + 5 + 8, "serialized_bytes": len(buffer.getvalue()),
                                     "entries": 3}
    assert state_summary({})["entries"] == 0
    assert state_summary({"file": np.zeros(2), "allow_pickle": np.zeros(1)})["parameter_bytes"] == 24   # any name
    with pytest.raises(ValueError, match="not a numeric"):
        state_summary({"o": np.array([{}], dtype=object)})
    with pytest.raises(ValueError, match="not a numeric"):
        state_summary({"s": np.array(["abc"])})
    with pytest.raises(ValueError, match="names are strings"):
        state_summary({3: np.zeros(1)})


# ------------------------------------------------------------------------------------------- folder contents
def test_fifo_in_the_folder_never_blocks(tmp_path):
    folder = make(tmp_path / "s")
    os.mkfifo(folder / "weights.npy")
    outcome = finishes(validate, folder)
    assert isinstance(outcome, SubmissionError)
    assert outcome.problems == ["weights.npy is not a regular file (a pipe, socket or device); remove it"]
    assert isinstance(finishes(content_sha256, folder), str)   # hashed as b"special", never opened
    os.remove(folder / "submission.json")
    os.mkfifo(folder / "submission.json")   # reported once, as a special file (not also as missing)
    outcome = finishes(validate, folder)
    assert isinstance(outcome, SubmissionError) and len(outcome.problems) == 2
    assert "submission.json is not a regular file" in outcome.problems[0]


def test_socket_and_device_are_refused(tmp_path):
    folder = make(tmp_path / "s")
    server = socket.socket(socket.AF_UNIX)
    try:
        server.bind(str(folder / "sock"))
        os.symlink("/dev/zero", folder / "zero")
        found = finishes(problems, folder)
    finally:
        server.close()
    assert found == ["sock is not a regular file (a pipe, socket or device); remove it",
                     "zero is a symbolic link to /dev/zero, which is outside the submission folder; copy the file "
                     "into the folder instead (the grader sees only the folder)"]


def test_a_file_swapped_for_a_fifo_after_the_scan_is_not_opened(tmp_path, monkeypatch):
    """The race: the entry was a regular file when listed, and is a FIFO when read."""
    folder = make(tmp_path / "s")
    real = sub._entries

    def swapped(root):
        listing = real(root)
        os.remove(root / "submission.json")
        os.mkfifo(root / "submission.json")
        return listing
    monkeypatch.setattr(sub, "_entries", swapped)
    outcome = finishes(validate, folder)
    assert isinstance(outcome, SubmissionError)
    assert outcome.problems == ["submission.json is a named pipe (FIFO), not a regular file (it was not read): "
                                "replace it with a regular file"]
    outcome = finishes(content_sha256, make(tmp_path / "t"))
    assert isinstance(outcome, SubmissionError) and "submission.json is a named pipe (FIFO) now" in str(outcome)


def test_links_on_the_way_are_never_followed(tmp_path):
    outside = make(tmp_path / "outside")
    folder = make(tmp_path / "s")
    os.symlink(outside, folder / "lib")
    assert "lib is a symbolic link to" in one_problem(folder)
    with pytest.raises(sub._NotRegular, match="lib is a symbolic link"):
        sub._open_inside(folder, "lib/submission.py")


def test_folders_nested_too_deeply(tmp_path):
    folder = make(tmp_path / "s")
    (folder / "/".join(["d"] * 40)).mkdir(parents=True)
    assert one_problem(folder) == (f"{'/'.join(['d'] * 33)} is a folder more than 32 folders deep: flatten the "
                                   f"folder (a submission needs one or two levels)")


def test_hostile_input_never_escapes_validate_or_content_sha256(tmp_path, monkeypatch):
    folder = make(tmp_path / "s")

    def broken(*args, **kwargs):
        raise OSError(5, "Input/output error")
    monkeypatch.setattr(sub, "_open_inside", broken)
    with pytest.raises(SubmissionError, match=r"cannot be read to hash it \(OSError: Input/output error"):
        content_sha256(folder)
    assert one_problem(folder).startswith("the folder cannot be read (Input/output error)")
    monkeypatch.setattr(sub, "_check_files", lambda *a: (_ for _ in ()).throw(RecursionError("deep")))
    with pytest.raises(SubmissionError, match=r"cannot be checked \(RecursionError: deep\)"):
        validate(folder)


# ------------------------------------------------------------------------------------------- data and embedded bytes
def test_example_baseline_has_no_data():
    info = validate(EXAMPLES / "baseline")
    assert info["data_bytes"] == 0 and info["embedded_bytes"] == 0


def test_weight_files_count_as_data(tmp_path):
    buffer = io.BytesIO()
    np.save(buffer, np.zeros(25_000, np.float32))
    folder = make(tmp_path / "s", extra={"weights.npy": buffer.getvalue(), "lib/util.py": b"K = 3\n"})
    info = validate(folder)
    assert info["data_bytes"] == len(buffer.getvalue()) >= 100_000 and info["embedded_bytes"] == 0


def test_literals_in_sources_count_as_embedded(tmp_path):
    source = (SOURCE + "BLOB = " + repr(b"\x01" * 10_000) + "\n"
              + "W = [" + ", ".join(str(i * 0.5) for i in range(1000)) + "]\n"
              + "M = [[1, -2, 3.0]] * 3 + [[4, 5]]\n"         # 11 numbers: not data
              + "T = " + repr(tuple(tuple(range(10)) for _ in range(10))) + "\n"   # 100 numbers, nested
              + "S = 'short'\n")
    helper = "TEXT = " + repr("é" * 200) + "\n"                  # 200 characters, 400 UTF-8 bytes
    folder = make(tmp_path / "s", source, extra={"helper.py": helper.encode()})
    assert validate(folder)["embedded_bytes"] == 10_000 + 1000 * 8 + 100 * 8 + 400


# ------------------------------------------------------------------------------------------- copy and unpack
def test_copy_submission_copies_exactly_the_validated_files(tmp_path):
    folder = make(tmp_path / "s", extra={"w/a.npy": b"abc"})
    info = validate(folder)
    (folder / "late.txt").write_text("not validated")
    out = copy_submission(folder, tmp_path / "box" / "work", info["files"])
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == info["files"]
    assert (out / "w" / "a.npy").read_bytes() == b"abc"
    os.remove(folder / "w" / "a.npy")
    os.mkfifo(folder / "w" / "a.npy")
    outcome = finishes(copy_submission, folder, tmp_path / "box2", info["files"])
    assert isinstance(outcome, SubmissionError) and "w/a.npy is a named pipe (FIFO) now" in str(outcome)
    assert not (tmp_path / "box2").exists()
    with pytest.raises(SubmissionError, match="not a relative path"):
        copy_submission(folder, tmp_path / "box3", ["../s/submission.py"])
    with pytest.raises(FileExistsError):
        copy_submission(folder, out, info["files"])


def test_unpack_refuses_a_fifo_and_file_folder_clashes(tmp_path):
    os.mkfifo(tmp_path / "a.zip")
    outcome = finishes(unpack, tmp_path / "a.zip", tmp_path / "out")
    assert isinstance(outcome, SubmissionError) and "is a named pipe (FIFO), not a regular file" in str(outcome)
    with zipfile.ZipFile(tmp_path / "b.zip", "w") as archive:
        archive.writestr("alice/x", b"1")
        archive.writestr("alice/x/y", b"2")
    with pytest.raises(SubmissionError, match="'alice/x' is both a file and a folder"):
        unpack(tmp_path / "b.zip", tmp_path / "out")
    (tmp_path / "big.zip").write_bytes(b"\0" * (sub.archive_limit(1000) + 1))
    with pytest.raises(SubmissionError, match="bytes; an archive of at most 1000 bytes of files is at most"):
        unpack(tmp_path / "big.zip", tmp_path / "out", max_bytes=1000)
    shutil.copytree(EXAMPLES / "int8", tmp_path / "src" / "int8")
    archive = sub.pack(tmp_path / "src" / "int8", tmp_path / "int8.zip")
    assert validate(unpack(archive, tmp_path / "out"))["id"] == "int8"
