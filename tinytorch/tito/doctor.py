"""`tito doctor`: what is installed, whether the package imports, and whether exports are stale."""
from __future__ import annotations

import json
import platform
import re
import subprocess
import sys
from importlib import metadata

from .runner import tree_env
from .tree import TitoError, Tree

# Distributions whose versions matter to the pipeline, as named in requirements.txt.
WATCHED = ("numpy", "scipy", "pandas", "matplotlib", "psutil", "nbdev", "fastcore", "execnb", "jupytext",
           "nbformat", "nbclient", "ipykernel", "nbgrader", "pytest", "hypothesis")

_IMPORT_PROBE = """
import importlib, json, sys
report = {}
for name in sys.argv[1:]:
    try:
        importlib.import_module(name)
        report[name] = None
    except BaseException as exc:  # report every failure, including SystemExit from student code
        report[name] = f"{type(exc).__name__}: {exc}"
print(json.dumps(report))
"""


def _pins(tree: Tree) -> dict[str, str]:
    path = tree.root / "requirements.txt"
    if not path.exists():
        return {}
    pins = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        match = re.match(r"^([A-Za-z0-9_.-]+)==(\S+)", line.strip())
        if match:
            pins[match[1].lower().replace("_", "-")] = match[2]
    return pins


def _generated_names(names):
    return [name for name in names if name != "tinytorch"]


def doctor(tree: Tree, say) -> list[str]:
    """Print the report; return the list of problems found (empty when all is well)."""
    problems: list[str] = []
    say(f"tree: {tree.root} ({tree.kind} tree, {len(tree.modules)} module(s))")
    say(f"python: {platform.python_version()} ({sys.executable}) on {platform.platform()}")
    pins = _pins(tree)
    for dist in WATCHED:
        try:
            have = metadata.version(dist)
        except metadata.PackageNotFoundError:
            have = None
        want = pins.get(dist)
        note = ""
        if have is None:
            note = "  <- not installed; run `make venv`"
            problems.append(f"{dist} is not installed")
        elif want and have != want:
            note = f"  <- requirements.txt pins {want}; run `make venv`"
            problems.append(f"{dist} {have} installed, {want} pinned")
        say(f"  {dist:<12} {have or '-'}{note}")

    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        spec = KernelSpecManager().get_kernel_spec("python3")
        say(f"kernel python3: {spec.resource_dir}")
    except NoSuchKernel:
        problems.append("no python3 Jupyter kernel")
        say("kernel python3: MISSING (install ipykernel: `make venv`)")

    from .exporter import build, generated_files, stale

    names = sorted(rel[:-3].replace("/", ".").removesuffix(".__init__") for rel in generated_files(tree))
    names = ["tinytorch", *names]
    proc = subprocess.run([sys.executable, "-c", _IMPORT_PROBE, *names], cwd=tree.root, env=tree_env(tree.root),
                          capture_output=True, text=True, timeout=300)
    try:
        imports = json.loads(proc.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        imports = {name: f"import probe failed: {proc.stderr.strip()[-300:]}" for name in names}
    for name in names:
        error = imports.get(name)
        say(f"import {name}: {'ok' if error is None else 'FAILED: ' + error}")
        if error is not None:
            problems.append(f"{name} does not import")

    from .tree import blockers

    pending = blockers(tree, sorted(name for name in _generated_names(names)))
    for blocker in pending:
        say(f"implemented: module {blocker.label()} is not yet: {blocker.reason()} (`tito module complete {blocker.number}`)")
    if not pending:
        say("implemented: every exported module (no student stub left in the package)")
    elif tree.kind == "instructor":
        problems.append(f"{len(pending)} module(s) of the instructor tree hold student stubs")

    try:
        from .progress import Progress

        done = Progress(tree.root).load()
        say(f"progress: {len(done)} of {len(tree.modules)} module(s) completed")
    except TitoError as exc:
        problems.append(str(exc))
        say(f"progress: PROBLEM: {exc}")

    try:
        result = build(tree, tree.modules, from_sources=tree.kind == "instructor")
        outdated = stale(tree, result, complete=True)
    except TitoError as exc:
        outdated = [("export", str(exc))]
    if tree.kind == "student":
        say(f"exports: {len(outdated)} notebook export(s) differ from the package (normal until you complete those modules)")
    else:
        say("exports: up to date" if not outdated else f"exports: {len(outdated)} stale file(s); run `tito export --all`")
        for rel, reason in outdated:
            say(f"  {rel}: {reason}")
            problems.append(f"{rel}: {reason}")
    say("no problems found" if not problems else f"{len(problems)} problem(s) found")
    return problems
