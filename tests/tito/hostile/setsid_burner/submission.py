"""Hostile: Starts setsid'd processes that burn CPU, to slow the baseline down while it is timed."""
import os

for _ in range(3):
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            with open("/proc/self/comm", "w") as comm:
                comm.write("hostileburner")
            while True:
                pass
        os._exit(0)

def build_model():
    from tinytorch.models.zoo import load_model

    return load_model("digits_cnn")
