"""Hostile: Forks children that each take 400 MiB at once: the memory limit must cover them all, so some die."""
import os
import sys
import time

import numpy as np

children = []
for _ in range(6):
    pid = os.fork()
    if pid == 0:
        hog = np.ones(50 * 2**20)          # 400 MiB, every page touched
        time.sleep(3)
        os._exit(0)
    children.append(pid)
killed = 0
for pid in children:
    _, status = os.waitpid(pid, 0)
    killed += os.WIFSIGNALED(status)
print(f"{killed} of {len(children)} children were killed", file=sys.stderr)
if not killed:
    raise SystemExit("HOSTILE: 6 x 400 MiB in children went past the memory limit unnoticed")


def build_model():
    from tinytorch.models.zoo import load_model

    return load_model("digits_cnn")
