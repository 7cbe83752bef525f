"""`tito olympics`: the TorchPerf Olympics tooling (submissions, the sandboxed grader, the leaderboard).

Hand-written (tinytorch/tito/); the events and their scoring live in the generated package tinytorch.capstone.
"""
