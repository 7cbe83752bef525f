"""Hostile: Tries to append code to the installed tinytorch package, the worker, the venv and system files."""
import os
import sys

import tinytorch
import tinytorch.tito.olympics.worker as worker

TARGETS = [tinytorch.__file__, worker.__file__, os.path.join(os.path.dirname(tinytorch.__file__), "evil.py"),
           os.path.join(sys.prefix, "lib", "evil.pth"), "/usr/lib/evil.py", "/etc/passwd", "/root/evil.txt",
           "/work/evil.txt"]
for target in TARGETS:
    try:
        with open(target, "a") as handle:
            handle.write("\nraise SystemExit('HOSTILE CODE RAN')\n")
        print("WROTE", target, file=sys.stderr)
    except OSError as exc:
        print("refused", target, exc.strerror, file=sys.stderr)

def build_model():
    from tinytorch.models.zoo import load_model

    return load_model("digits_cnn")
