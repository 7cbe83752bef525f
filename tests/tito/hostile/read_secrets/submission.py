"""Hostile: Looks for /etc/shadow, the grader's files and other students' submissions; says what it found."""
import os
import sys

found = []
for path in ("/etc/shadow", "/root", "/work/..", "/tmp/..", "/proc/1/environ", "/home"):
    try:
        found.append((path, sorted(os.listdir(path))[:5] if os.path.isdir(path) else open(path, "rb").read(40)))
    except OSError as exc:
        print("refused", path, exc.strerror, file=sys.stderr)
print("FOUND", found, file=sys.stderr)
if any(name in str(found) for name in ("shadow", "submissions", "results", "hostile")):
    raise SystemExit("HOSTILE: could read the grader's or other students' files: " + str(found)[:300])

def build_model():
    from tinytorch.models.zoo import load_model

    return load_model("digits_cnn")
