"""`tito`: the TinyTorch command line. Thin: one function per subcommand, plain text output.

Exit status: 0 success; 1 a check failed (tests, stale files, an export error); 2 bad arguments.
"""
from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import signal
import sys
import time
from pathlib import Path

from .tree import TitoError, Tree, UsageError


def say(message: str = "") -> None:
    print(message, flush=True)


# --- export -------------------------------------------------------------------------------------
def cmd_export(args, tree: Tree) -> int:
    from .exporter import build, install, stale

    if args.modules and args.all:
        raise UsageError("give module numbers or --all, not both")
    if args.check and not args.modules:
        args.all = True  # `tito export --check` checks everything
    if not args.modules and not args.all:
        raise UsageError(f"say which modules to export: `tito export 1 3-5` or `tito export --all` (valid choices: {tree.valid_choices()})")
    modules = tree.modules if args.all else tree.select(args.modules)
    from_sources = tree.kind == "instructor"
    result = build(tree, modules, from_sources=from_sources)
    if args.check:
        problems = stale(tree, result, complete=args.all)
        if problems:
            say(f"{len(problems)} generated file(s) are stale; run `tito export --all`:")
            for rel, reason in problems:
                say(f"  {rel}: {reason}")
            return 1
        say(f"up to date: {len(result.files)} generated file(s) from {len(modules)} module(s)")
        return 0
    written, removed = install(tree, result, complete=args.all)
    for rel in written:
        say(f"wrote {rel}")
    for rel in removed:
        say(f"removed {rel} (no module exports it any more)")
    say(f"exported {len(modules)} module(s): {len(written)} file(s) written, {len(result.files) - len(written)} unchanged, {len(removed)} removed")
    return 0


# --- module ---------------------------------------------------------------------------------------
def _table(tree: Tree, with_details: bool) -> int:
    from .progress import Progress
    from .workflow import failed_after, failure_note, state

    progress = Progress(tree.root)
    completed, failed = progress.load(), progress.load_failed()
    rows = [("#", "title", "exports", "state")]
    details = []
    for module in tree.modules:
        current = state(tree, module, completed, failed)
        rows.append((f"{module.number:02d}", module.title, module.export_target or "-", current))
        record = completed.get(module.slug)
        failure = failed.get(module.slug)
        if with_details and record:
            line = (f"{module.number:02d} completed {record.get('completed_at', '?')}: "
                    f"{record.get('tests_passed', '?')} tests passed, notebook ran "
                    f"{record.get('notebook_cells', '?')} code cells")
            if failed_after(record, failure):
                line += f"\n   {failure_note(tree, module, record, failure)}"
            details.append(line)
        elif with_details and failure:
            first = f" (first failure: {failure['first_failure']})" if failure.get("first_failure") else ""
            details.append(f"{module.number:02d} not completed: the last `tito module complete {module.number}` FAILED at "
                           f"{failure.get('failed_at', '?')}{first}; the package holds that code")
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        say("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    if with_details:
        say()
        for line in details:
            say(line)
        say(f"{len(completed)} of {len(tree.modules)} module(s) completed ({tree.kind} tree at {tree.root})")
    return 0


def cmd_module_list(args, tree: Tree) -> int:
    if getattr(args, "stats", False):
        from .stats import module_stats, stats_rows

        rows = stats_rows(module_stats(tree.modules))
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        for row in rows:
            say("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
        say()
        say("student share = solution lines / code lines of the #| export cells (non-blank, non-comment); an exercise "
            "is 'mostly checks' when more than half of its lines are raise statements and their guards; given code lines "
            "are the exported code lines of the module's given-code notebooks, which ship solved and are not in the share")
        return 0
    return _table(tree, with_details=False)


def cmd_module_status(args, tree: Tree) -> int:
    return _table(tree, with_details=True)


def cmd_module_start(args, tree: Tree) -> int:
    from .progress import Progress
    from .workflow import COMPLETED, prerequisite_note, prerequisites, restore_hint, shipped_solved

    module = tree.module(args.number)
    nb_rel = module.rel(module.notebook)
    if not module.notebook.exists():
        raise TitoError(f"{nb_rel} does not exist; {restore_hint(tree, module)}")
    completed = Progress(tree.root).load()
    say(f"Module {module.number:02d}: {module.title} (exports {module.export_target})")
    say(f"Notebook: {nb_rel}")
    say(f"Open it:  jupyter lab {nb_rel}")
    say(f"When done: tito module complete {module.number}")
    missing = prerequisites(tree, module)
    solved = shipped_solved(tree)
    earlier = [m for m in tree.modules if m.number < module.number and m.slug not in completed and m.slug not in solved
               and m.number not in {b.number for b in missing}]
    if missing:
        say(f"Note: {prerequisite_note(module, missing)}.")
    if earlier and tree.kind == "student":
        say(f"Note: earlier exercise module(s) not completed yet: {', '.join(m.slug for m in earlier)}.")
    if not missing and not earlier and module.slug in completed:
        say(f"Note: this module is already {COMPLETED}.")
    return 0


def cmd_module_reset(args, tree: Tree) -> int:
    from .workflow import reset

    module = tree.module(args.number)
    message, backup = reset(tree, module, args.yes)
    say(message)
    if backup:
        say(f"backup of your previous notebook: {backup}")
        say(f"progress records and the package are unchanged; run `tito module complete {module.number}` when you are done")
    return 0


SHOWN_FAILURES = 20  # failed tests listed one by one; the summary by exercise covers them all


def _print_checks(report, module) -> None:
    from .workflow import summary_lines

    nb, tests = report.notebook, report.tests
    if nb.ok:
        say(f"notebook: ran {nb.cells} code cells without error ({nb.seconds:.1f} s)")
    else:
        others = len(nb.errors) - 1
        more = f" ({others} more cell(s) raised: see the summary)" if others > 0 else ""
        say(f"notebook: FAILED: {nb.error}{more}")
    say(f"tests: {tests.passed} passed, {len(tests.failed)} failed, {len(tests.skipped)} skipped ({tests.seconds:.1f} s)")
    for name, message in tests.failed[:SHOWN_FAILURES]:
        lines = message.splitlines() or [""]
        say(f"  FAILED {name}: {lines[0]}")
        for extra in lines[1:6]:
            say(f"      {extra}")
    if len(tests.failed) > SHOWN_FAILURES:
        say(f"  ... and {len(tests.failed) - SHOWN_FAILURES} more failed test(s) (all of them: "
            f"python -m pytest {tests.folder})")
    for name, reason in tests.skipped:
        say(f"  skipped {name}: {reason}")
    for line in summary_lines(module, report):
        say(line)


def cmd_module_test(args, tree: Tree) -> int:
    from .workflow import test

    module = tree.module(args.number)
    report = test(tree, module, say)
    _print_checks(report, module)
    say(f"module {module.number:02d}: {'all checks passed' if report.ok else 'checks FAILED'} "
        f"(your notebook as it is now; the installed package and progress are unchanged)")
    return 0 if report.ok else 1


def cmd_module_complete(args, tree: Tree) -> int:
    from .workflow import complete

    module = tree.module(args.number)
    start = time.perf_counter()
    report = complete(tree, module, say)
    _print_checks(report, module)
    seconds = time.perf_counter() - start
    if report.ok:
        say(f"Module {module.number:02d} ({module.title}) completed in {seconds:.1f} s; progress recorded.")
        return 0
    say(f"Module {module.number:02d} ({module.title}) is NOT complete; progress unchanged, the package holds this "
        f"code and the failure is recorded ({seconds:.1f} s).")
    return 1


# --- release and doctor ---------------------------------------------------------------------------
def cmd_release(args, tree: Tree) -> int:
    from .release import release

    exercises = tree.select([args.modules]) if args.modules else list(tree.modules)
    manifest = release(tree, Path(args.out), exercises)
    say(f"student edition written to {Path(args.out).resolve()}")
    say(f"  exercises: {', '.join(manifest['exercise_modules']) or 'none'}")
    say(f"  shipped solved: {', '.join(manifest['solved_modules']) or 'none'}")
    if args.modules and not exercises:
        say(f"  note: no module in {args.modules!r} exists yet, so every module ships solved")
    return 0


def cmd_doctor(args, tree: Tree) -> int:
    from .doctor import doctor

    problems = doctor(tree, say)
    return 1 if problems else 0


# --- parser ---------------------------------------------------------------------------------------
# The examples of `tito grade --help` and `tito olympics --help` (docs/grading.md shows the same lines, and
# tests/tito/test_grade.py runs the grade example as written).
GRADE_EXAMPLE = """\
example (in the instructor tree; module 04's notebook as the homework):
  tito grade generate --course ../course --modules 4
  tito grade autograde --course ../course --submissions ../collected
  tito grade export --course ../course --out ../grades.csv

collected work goes in ../collected/<student_id>/module04/04_losses.ipynb (one folder per student).
autograde grades every notebook it can and exits 1 if any could not be graded (missing, broken, or
changed since it was graded: see --replace); running it again grades only what is new.
see docs/grading.md."""
OLYMPICS_EXAMPLE = """\
example:
  tito olympics submit my_entry --event latency_sprint     (a student: validate and pack my_entry.zip)
  tito olympics grade submissions --out results/olympics --data private_test.npz --require-isolation
  tito olympics leaderboard results/olympics

every submission gets a status (ok, invalid, timeout, crashed, out of memory, constraint not met, grader
error); a broken or hostile one never stops the others. Without --data the public digits test split is used,
which a model can memorise: its scores prove little. Instructors: see docs/grading.md (the threat model)."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tito", description="TinyTorch: build, test and release the course modules.")
    parser.add_argument("--root", metavar="DIR", help="the TinyTorch tree to work on (default: found from the current folder)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    export = sub.add_parser("export", help="modules/ -> nbs/ -> tinytorch/ (instructor); nbs/ -> tinytorch/ (student)")
    export.add_argument("modules", nargs="*", metavar="N", help="module numbers or ranges, e.g. 1 3-5")
    export.add_argument("--all", action="store_true", help="every module")
    export.add_argument("--check", action="store_true", help="write nothing; exit 1 listing every stale generated file")
    export.set_defaults(func=cmd_export)

    module = sub.add_parser("module", help="work on one module: list, status, start, reset, test, complete")
    msub = module.add_subparsers(dest="action", metavar="{list,status,start,reset,test,complete}", required=True)
    mlist = msub.add_parser("list", help="number, title, export target and state of every module")
    mlist.add_argument("--stats", action="store_true",
                       help="instructor tree: lines, exercises, solution lines and student share of every module")
    mlist.set_defaults(func=cmd_module_list)
    msub.add_parser("status", help="like list, plus what was completed when").set_defaults(func=cmd_module_status)
    for name, func, text in (("start", cmd_module_start, "where the notebook is and how to open it"),
                             ("test", cmd_module_test, "run the notebook headless and tests/NN_name/"),
                             ("complete", cmd_module_complete, "export your notebook, test it, record progress if all pass")):
        action = msub.add_parser(name, help=text)
        action.add_argument("number", metavar="N", help="module number")
        action.set_defaults(func=func)
    reset = msub.add_parser("reset", help="restore the notebook from the student edition (keeps a backup)")
    reset.add_argument("number", metavar="N", help="module number")
    reset.add_argument("--yes", action="store_true", help="discard the changes in the notebook (a backup is kept)")
    reset.set_defaults(func=cmd_module_reset)

    rel = sub.add_parser("release", help="write the student edition (solutions removed) to a new folder")
    rel.add_argument("--out", required=True, metavar="DIR", help="a new or empty folder outside this tree")
    rel.add_argument("--modules", metavar="SPEC", help="which modules are exercises, e.g. 14-20 (default: all); the rest ship solved")
    rel.set_defaults(func=cmd_release)

    sub.add_parser("doctor", help="environment report: versions, imports, stale exports").set_defaults(func=cmd_doctor)

    zoo = sub.add_parser("zoo", help="the trained reference models: list, eval, train")
    zsub = zoo.add_subparsers(dest="action", metavar="{list,eval,train}", required=True)
    zsub.add_parser("list", help="the reference models and their shipped weights").set_defaults(func=_command("zoo", "cmd_zoo_list"))
    zeval = zsub.add_parser("eval", help="test accuracy of the shipped (or given) weights")
    zeval.add_argument("name", help="model name, e.g. digits_cnn")
    zeval.add_argument("--weights", metavar="FILE", help="a weights .npz to evaluate instead of the shipped one")
    zeval.add_argument("--split", default="test", choices=("train", "test"), help="digits split (default: test)")
    zeval.set_defaults(func=_command("zoo", "cmd_zoo_eval"))
    ztrain = zsub.add_parser("train", help="train a reference model from scratch with its seeded recipe")
    ztrain.add_argument("name", help="model name, e.g. digits_cnn")
    ztrain.add_argument("--seed", type=int, default=None, help="training seed (default: the recipe's, which made the shipped weights)")
    ztrain.add_argument("--out", metavar="FILE", help="where to save the weights (default: results/zoo/NAME-seedS.npz)")
    ztrain.add_argument("--install", action="store_true", help="replace the shipped weights in tinytorch/assets/zoo/ and the manifest")
    ztrain.set_defaults(func=_command("zoo", "cmd_zoo_train"))

    bench = sub.add_parser("bench", help="performance figures, measured on this machine")
    bsub = bench.add_subparsers(dest="suite", metavar="{core,profiler,optimization,olympics}", required=True)
    core = bsub.add_parser("core", help="time to train the reference models to target; Conv2d GFLOP/s vs matmul")
    core.add_argument("models", nargs="*", help="only these reference models (default: all)")
    core.set_defaults(func=_command("bench", "cmd_bench_core"))
    prof = bsub.add_parser("profiler", help="the measured roofline and measure_latency's accuracy against known truths")
    prof.add_argument("--refresh", action="store_true", help="measure the machine peak again instead of using the cache")
    prof.set_defaults(func=_command("bench", "cmd_bench_profiler"))
    opt = bsub.add_parser("optimization", help="modules 15-17: quantization, compression, acceleration, measured")
    opt.add_argument("techniques", nargs="*", metavar="TECHNIQUE", help="quantization, compression, acceleration (default: all)")
    opt.set_defaults(func=_command("bench", "cmd_bench_optimization"))
    oly = bsub.add_parser("olympics", help="module 20: speed-up precision, grading time for 1..N submissions, "
                                           "score stability")
    oly.add_argument("--example", default="distilled", help="example submission to copy (default distilled)")
    oly.add_argument("--counts", type=int, nargs="*", default=[1, 5, 20], metavar="N",
                     help="numbers of submissions to grade (default 1 5 20; none: skip)")
    oly.add_argument("--precision", type=int, default=3, metavar="RUNS",
                     help="grade the baseline and the pruned example RUNS times each for the speed-up's precision "
                          "(default 3; 0: skip)")
    oly.set_defaults(func=_command("bench", "cmd_bench_olympics"))

    bm = sub.add_parser("benchmark", help="module 19: benchmark suite, TinyMLPerf, measurement self-check")
    bmsub = bm.add_subparsers(dest="kind", metavar="{run,tinymlperf,selfcheck,train-reference}", required=True)
    brun = bmsub.add_parser("run", help="latency, accuracy, memory and energy of reference models, with a written report")
    brun.add_argument("--models", nargs="+", metavar="NAME", help="zoo models (default: digits_cnn and its optimized variants)")
    brun.add_argument("--out", metavar="DIR", help="parent folder of the run folder (default: results/benchmark)")
    brun.add_argument("--max-time", type=float, default=10.0, metavar="S", help="latency sampling stops after S seconds (default 10)")
    brun.set_defaults(func=_command("benchmark", "cmd_benchmark_run"))
    bml = bmsub.add_parser("tinymlperf", help="the TinyMLPerf tasks on their reference models, with a compliance report")
    bml.add_argument("--task", action="append", metavar="T", help="only this task (repeatable; default: all)")
    bml.add_argument("--runs", type=int, default=100, help="single-sample latency runs in performance mode (default 100)")
    bml.add_argument("--seed", type=int, default=42, help="data seed (default 42)")
    bml.add_argument("--out", metavar="DIR", help="parent folder of the run folder (default: results/tinymlperf)")
    bml.set_defaults(func=_command("benchmark", "cmd_benchmark_tinymlperf"))
    bsc = bmsub.add_parser("selfcheck", help="is the timing and statistics machinery valid on this machine?")
    bsc.add_argument("--quick", action="store_true", help="fewer trials (lower-confidence figures)")
    bsc.add_argument("--json", metavar="FILE", help="also write the full result as JSON to FILE (stdout shows only the table)")
    bsc.add_argument("--overwrite", action="store_true", help="replace FILE if it exists")
    bsc.set_defaults(func=_command("benchmark", "cmd_benchmark_selfcheck"))
    btr = bmsub.add_parser("train-reference", help="retrain a TinyMLPerf reference model with its seeded recipe")
    btr.add_argument("task", help="visual_wake_words, keyword_spotting or anomaly_detection")
    btr.add_argument("--seed", type=int, default=0, help="training seed (default 0, which made the shipped weights)")
    btr.add_argument("--install", action="store_true", help="replace the shipped weights and their manifest entry")
    btr.add_argument("--verbose", action="store_true", help="print the loss of every epoch")
    btr.set_defaults(func=_command("benchmark", "cmd_benchmark_train_reference"))

    grade = sub.add_parser("grade", help="nbgrader, offline: generate a course, autograde collected notebooks, export grades",
                           epilog=GRADE_EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    gsub = grade.add_subparsers(dest="action", metavar="{generate,autograde,export}", required=True)
    ggen = gsub.add_parser("generate", help="an nbgrader course folder with one assignment per module")
    ggen.add_argument("--course", required=True, metavar="DIR", help="the course folder to create (new or empty)")
    ggen.add_argument("--modules", metavar="SPEC", help="which modules become assignments, e.g. 01,14-17 (default: all)")
    ggen.add_argument("--force", action="store_true", help="add or update assignments in an existing, non-empty DIR (nothing is deleted)")
    ggen.set_defaults(func=_command("grade", "cmd_grade_generate"))
    gauto = gsub.add_parser("autograde", help="run collected notebooks and record their scores in the gradebook")
    gauto.add_argument("--course", required=True, metavar="DIR", help="a course folder made by `tito grade generate`")
    gauto.add_argument("--submissions", required=True, metavar="FOLDER", help="collected work as FOLDER/<student_id>/<assignment>/<notebook>.ipynb")
    gauto.add_argument("--timeout", type=int, default=None, metavar="S", help="seconds each cell may run (default: the course's nbgrader_config.py, 120)")
    gauto.add_argument("--force", action="store_true", help="grade again even the submissions graded before that did not change")
    gauto.add_argument("--replace", action="store_true", help="grade work that differs from the copy graded before (the old copy is kept under DIR/replaced/)")
    gauto.set_defaults(func=_command("grade", "cmd_grade_autograde"))
    gexp = gsub.add_parser("export", help="grades per student x assignment x graded cell, with totals, as CSV")
    gexp.add_argument("--course", required=True, metavar="DIR", help="a course folder made by `tito grade generate`")
    gexp.add_argument("--out", required=True, metavar="FILE", help="the CSV file to write")
    gexp.add_argument("--overwrite", action="store_true", help="replace FILE if it exists")
    gexp.set_defaults(func=_command("grade", "cmd_grade_export"))

    ol = sub.add_parser("olympics", help="module 20: the TorchPerf Olympics: submit, grade, leaderboard",
                        epilog=OLYMPICS_EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    olsub = ol.add_subparsers(dest="action", metavar="{submit,grade,leaderboard}", required=True)
    osub = olsub.add_parser("submit", help="validate a submission folder and pack it as a deterministic .zip")
    osub.add_argument("folder", metavar="FOLDER", help="the folder with submission.py and submission.json")
    osub.add_argument("--event", metavar="EVENT", help="check that submission.json enters EVENT, e.g. latency_sprint")
    osub.add_argument("--out", metavar="FILE", help="archive path (default: <id>.zip next to the folder); never overwritten")
    osub.set_defaults(func=_command("olympics.submission", "cmd_olympics_submit"))
    ogr = olsub.add_parser("grade", help="grade every submission in its own sandboxed process; results.json in DIR")
    ogr.add_argument("submissions", metavar="SUBMISSIONS", help="a folder of submission folders (or .zip archives)")
    ogr.add_argument("--out", metavar="DIR", help="the grading folder (default results/olympics; re-running is idempotent)")
    ogr.add_argument("--timeout", type=float, metavar="S", help="wall-clock limit per submission in seconds (default 60)")
    ogr.add_argument("--force", action="store_true", help="grade again even the submissions that did not change")
    ogr.add_argument("--data", metavar="FILE", help="private test data: an .npz with arrays 'inputs' and 'labels' "
                     "(default: the public digits test split, which proves little)")
    ogr.add_argument("--entries", choices=("latest", "best", "all"), default="latest",
                     help="which of a student's entries count in an event (default: the latest submitted)")
    ogr.add_argument("--require-isolation", action="store_true",
                     help="refuse to grade unless every isolation mechanism works on this machine")
    ogr.set_defaults(func=_command("olympics.grader", "cmd_olympics_grade"))
    olb = olsub.add_parser("leaderboard", help="print the rankings and (re)write leaderboard.csv/.md/.html and plots in DIR")
    olb.add_argument("dir", metavar="DIR", help="a grading folder holding results.json (from `tito olympics grade`)")
    olb.set_defaults(func=_command("olympics.leaderboard", "cmd_olympics_leaderboard"))
    return parser


def _command(module, name):
    """A subcommand implemented in tinytorch/tito/<module>.py (imported only when it runs)."""
    def run(args, tree):
        return getattr(importlib.import_module(f"{__package__}.{module}"), name)(args, tree, say)
    return run


# --- what each command needs from the package --------------------------------------------------------
# The generated modules each command runs in this process (or in the Olympics sandbox). `main` checks, before
# the command starts, that they and everything they import (read from the generated files) are exported and
# hold no student stub; otherwise it names the module to complete, in one line. The Olympics commands' needs
# are read from the imports of their own code (tinytorch/tito/olympics/*.py), so they follow it.
ZOO = "tinytorch.models.zoo"
VARIANTS = ("tinytorch.optimization.quantization", "tinytorch.optimization.compression")  # tito/zoo.py VARIANT_PROVIDERS


def _imports_of(*files: str) -> tuple[str, ...]:
    from .tree import module_imports

    here = Path(__file__).resolve().parent
    names = set()
    for name in files:
        names |= module_imports((here / name).read_text(encoding="utf-8"), f"{__package__}.{Path(name).parent.as_posix()}".rstrip("."))
    return tuple(sorted(names))


def _optimization_needs(args, tree: Tree) -> tuple[str, ...]:
    from .bench import OPTIMIZATION_REPORTS

    chosen = [OPTIMIZATION_REPORTS[name][0] for name in (args.techniques or OPTIMIZATION_REPORTS) if name in OPTIMIZATION_REPORTS]
    # `bench optimization` skips a technique whose module is not exported at all; a stubbed one is checked.
    return tuple(name for name in chosen if (tree.root / (name.replace(".", "/") + ".py")).exists())


NEEDS = {
    ("zoo", "eval"): (ZOO,),
    ("zoo", "train"): (ZOO,),
    ("bench", "core"): (ZOO, "tinytorch.core.spatial"),
    ("bench", "profiler"): ("tinytorch.profiling.profiler",),
    ("bench", "optimization"): _optimization_needs,
    ("bench", "olympics"): lambda args, tree: _imports_of("olympics/grader.py", "olympics/worker.py", "olympics/leaderboard.py"),
    ("benchmark", "run"): lambda args, tree: (ZOO, "tinytorch.benchmarking.suite", "tinytorch.data.loader",
                                        *(VARIANTS if not args.models or any(m not in ("digits_mlp", "digits_cnn") for m in args.models) else ())),
    ("benchmark", "tinymlperf"): ("tinytorch.benchmarking.mlperf",),
    ("benchmark", "selfcheck"): ("tinytorch.benchmarking.selfcheck",),
    ("benchmark", "train-reference"): ("tinytorch.benchmarking.tasks",),
    ("olympics", "grade"): lambda args, tree: _imports_of("olympics/grader.py", "olympics/worker.py"),
    ("olympics", "leaderboard"): lambda args, tree: _imports_of("olympics/leaderboard.py"),
}


def _command_key(args) -> tuple[str, str | None]:
    sub = {"zoo": "action", "bench": "suite", "benchmark": "kind", "olympics": "action", "grade": "action", "module": "action"}
    return args.command, getattr(args, sub.get(args.command, ""), None)


def _needs(args, tree: Tree) -> tuple[str, ...]:
    need = NEEDS.get(_command_key(args), ())
    return tuple(need(args, tree) if callable(need) else need)


def _shown(args) -> str:
    command, action = _command_key(args)
    return f"`tito {command}{' ' + action if action else ''}`"


def _use_the_trees_package(tree: Tree, argv) -> None:
    """A command that runs the package in this process must run the tree's own package. When this tito
    imported another one (e.g. `/other/.venv/bin/tito --root TREE`), run again as TREE's `python -m
    tinytorch.tito`, with TREE first on the import path."""
    import tinytorch

    here = Path(tinytorch.__file__).resolve().parent
    if here == tree.lib.resolve():
        return
    if os.environ.get("TITO_REEXEC") == str(tree.root):
        raise TitoError(f"this tito runs the package in {here}, not the tree's {tree.lib}, even with {tree.root} first on "
                        "PYTHONPATH; run the tree's own tito (`make` in it creates .venv/bin/tito)")
    env = dict(os.environ, TITO_REEXEC=str(tree.root),
               PYTHONPATH=os.pathsep.join([str(tree.root), *filter(None, [os.environ.get("PYTHONPATH")])]))
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, "-m", "tinytorch.tito", *argv], env)


def _not_done(exc: BaseException, tree: Tree | None) -> str | None:
    """One line for a student stub or a module that is not exported yet, raised by a command; None otherwise."""
    import traceback

    from .tree import STUB_MESSAGE, notebook_exports

    names = {m.number: m.name for m in tree.modules} if tree else {}
    if isinstance(exc, NotImplementedError):
        match = STUB_MESSAGE.match(str(exc))
        if not match:
            return None
        number = int(match[1])
        frames = traceback.extract_tb(exc.__traceback__)
        where = ""
        if frames:
            path = Path(frames[-1].filename)
            try:
                where = f" (raised in {path.resolve().relative_to(tree.root).as_posix()}, line {frames[-1].lineno})" if tree else ""
            except ValueError:
                where = f" (raised in {path}, line {frames[-1].lineno})"
        return (f"module {number:02d} ({names.get(number, '?')}) is not implemented yet: `{match[2]}` still raises "
                f"NotImplementedError{where}; complete it first with `tito module complete {number}`")
    if isinstance(exc, ModuleNotFoundError) and exc.name and exc.name.startswith("tinytorch.") and not exc.name.startswith("tinytorch.tito"):
        exports = notebook_exports(tree) if tree else {}
        number = exports.get(exc.name) or next((n for name, n in exports.items() if name.startswith(exc.name + ".")), None)
        if number is None:
            return None
        return (f"{exc.name} is not exported yet: module {number:02d} ({names.get(number, '?')}) exports it; "
                f"complete it first with `tito module complete {number}`")
    return None


class _TitoLoopPolicy(asyncio.DefaultEventLoopPolicy):
    """Event loops that leave Ctrl-C to tito. nbclient (under `module test|complete` and nbgrader's `grade
    autograde`) otherwise installs a SIGINT handler that shuts the kernel down while a cell runs and carries on:
    the kernel's ZMQ tracebacks, and a run that does not stop. With this, Ctrl-C raises KeyboardInterrupt in
    tito, which kills the kernel and says so in one line."""

    def new_event_loop(self):
        loop = super().new_event_loop()
        original = loop.add_signal_handler

        def add_signal_handler(sig, callback, *args):
            if sig == signal.SIGINT:
                raise RuntimeError("tito handles Ctrl-C itself")  # nbclient treats RuntimeError as "no signals here"
            return original(sig, callback, *args)

        loop.add_signal_handler = add_signal_handler
        return loop


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    tree = None
    asyncio.set_event_loop_policy(_TitoLoopPolicy())
    signal.signal(signal.SIGINT, _on_ctrl_c)
    try:
        tree = Tree(Path(args.root)) if args.root else Tree.find()
        needs = _needs(args, tree)
        if needs:
            _use_the_trees_package(tree, argv)
            from .tree import require_implemented

            require_implemented(tree, needs, _shown(args))
        return args.func(args, tree)
    except TitoError as exc:
        print(f"tito: error: {exc}", file=sys.stderr, flush=True)
        return exc.exit_code
    except (NotImplementedError, ModuleNotFoundError) as exc:
        line = _not_done(exc, tree)
        if line is None:
            raise
        print(f"tito: error: {line}", file=sys.stderr, flush=True)
        return 1
    except BrokenPipeError:  # the reader went away (e.g. `tito ... | head`): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except KeyboardInterrupt:
        return _interrupted()


def _on_ctrl_c(signum, frame):
    """SIGINT: kill the children first (before any library's clean-up asks a busy kernel to shut down, which
    makes it print ZMQ tracebacks), then unwind as KeyboardInterrupt."""
    from .runner import stop_children

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    stop_children()
    raise KeyboardInterrupt


def _interrupted() -> int:
    """Ctrl-C: stop every child (notebook kernel, pytest, nbgrader's kernels), say so in one line, print nothing else."""
    from .runner import stop_children

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not interrupt the clean-up
    stopped = stop_children()
    what = f"; stopped {stopped} child process(es) (notebook kernel, pytest)" if stopped else ""
    print(f"tito: interrupted{what}; files are replaced atomically, so nothing was left half-written", file=sys.stderr, flush=True)
    # Whatever the interrupted libraries print while they unwind (asyncio tasks, atexit hooks) is noise now.
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stderr.fileno())
    return 130


if __name__ == "__main__":
    sys.exit(main())
