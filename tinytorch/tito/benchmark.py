"""`tito benchmark`: module 19's suite, TinyMLPerf and the measurement self-check, run from the shell.

Thin wrappers: every number comes from tinytorch.benchmarking (the package the student built).
"""
from __future__ import annotations

import json
from pathlib import Path

from .tree import TitoError, Tree, UsageError, exported_module
from .zoo import zoo_module

DEFAULT_MODELS = ("digits_cnn", "digits_cnn_int8", "digits_cnn_pruned", "digits_cnn_distilled")


def _benchmarking(name: str):
    module_name = f"tinytorch.benchmarking.{name}"
    module = exported_module(module_name)
    if module is None:
        raise TitoError(f"{module_name} is not exported yet: it comes from module 19 (`tito module status`)")
    return module


def _digits_models(zoo, names):
    unknown = [n for n in names if n not in zoo.model_names()]
    if unknown:
        raise UsageError(f"unknown model(s) {', '.join(unknown)}: valid choices are {', '.join(zoo.model_names())}")
    flatten = {n: zoo._spec(n).flatten for n in names}
    if len(set(flatten.values())) > 1:
        flat = [n for n, f in flatten.items() if f]
        raise UsageError(f"{', '.join(flat)} read flattened digits and the others read images; benchmark them in "
                         "separate runs so that every model sees the same inputs")
    return {n: zoo.load_model(n) for n in names}, next(iter(flatten.values()))


def cmd_benchmark_run(args, tree: Tree, say) -> int:
    zoo = zoo_module(tree)
    suite_module = _benchmarking("suite")
    from tinytorch.data.loader import load_digits

    models, flatten = _digits_models(zoo, args.models or list(DEFAULT_MODELS))
    images, labels = load_digits("test", flatten=flatten).tensors
    out = Path(args.out) if args.out else tree.root / "results" / "benchmark"
    suite = suite_module.BenchmarkSuite(models, (images.data, labels.data), output_dir=out,
                                        max_time_s=args.max_time)
    say(f"Benchmarking {', '.join(models)} on the digits test split ({len(labels.data)} images)")
    suite.run_full_benchmark(progress=lambda line: say(f"  {line}"))
    suite.generate_report()                  # the Markdown text; its files are in suite.report_paths
    folder = suite.report_paths["folder"]
    columns = {"latency": ["model", "median", "median_low", "median_high", "ratio_to_best", "ratio_low", "ratio_high", "p_holm"],
               "accuracy": ["model", "accuracy", "ci_lower", "ci_upper", "diff_to_best", "p_holm"],
               "memory": ["model", "parameter_bytes", "serialized_bytes", "median", "median_low", "median_high", "p_holm"]}
    for metric, shown in columns.items():
        table = suite.benchmark.compare_models(metric)
        say(f"== {metric} ({table.attrs['metric']}; p_holm: Holm-adjusted p against the best, "
            f"{'McNemar' if metric == 'accuracy' else 'Mann-Whitney'})")
        say(table[shown].to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    doc = json.loads((folder / "results.json").read_text(encoding="utf-8"))
    for line in doc["recommendations"]:
        say(f"- {line}")
    say(f"report: {folder / 'report.md'} (also report.html, results.json, results.csv, plots)")
    return 0


def cmd_benchmark_tinymlperf(args, tree: Tree, say) -> int:
    mlperf = _benchmarking("mlperf")
    runner = mlperf.TinyMLPerf(random_seed=args.seed)
    tasks = args.task or runner.list_benchmarks()
    unknown = [t for t in tasks if t not in runner.list_benchmarks()]
    if unknown:
        raise UsageError(f"unknown task(s) {', '.join(unknown)}: valid choices are {', '.join(runner.list_benchmarks())}")
    windows = mlperf.WINDOWS
    if args.runs < windows:
        raise UsageError(f"--runs {args.runs} is too few: performance mode reports the median of {windows} windows, "
                         f"so it needs at least {windows} single-sample runs (default 100)")
    results = {}
    for task in tasks:
        say(f"{task}: accuracy mode (full test split), then performance mode (5 windows)")
        r = runner.run_standard_benchmark(None, task, num_runs=args.runs)
        results[task] = r
        say(f"  {r['quality_metric']} {r['accuracy']:.4f} [{r['accuracy_ci'][0]:.4f}, {r['accuracy_ci'][1]:.4f}] "
            f"target {r['target_accuracy']}: {'met' if r['accuracy_met'] else 'NOT met'}; latency {r['latency_ms']:.4g} ms "
            f"[{r['latency_ci_ms'][0]:.4g}, {r['latency_ci_ms'][1]:.4g}] target {r['target_latency_ms']} ms: "
            f"{'met' if r['latency_met'] else 'NOT met'}; compliant: {'yes' if r['compliant'] else 'no'}")
    out = Path(args.out) if args.out else tree.root / "results" / "tinymlperf"
    out.mkdir(parents=True, exist_ok=True)
    stamp = _benchmarking("reporting").new_run_dir(out, "tinymlperf")
    runner.generate_compliance_report(results, stamp / "compliance.json")
    json_path, summary = runner.report_paths["json"], runner.report_paths["summary"]
    passed = sum(bool(r["compliant"]) for r in results.values())
    say(f"Compliance Rate: {passed}/{len(results)}; report: {summary} and {json_path}")
    return 0


def _json_target(value: str | None, overwrite: bool) -> Path | None:
    """--json FILE checked before anything runs: its folder must exist, FILE must not be a folder, and an
    existing FILE is replaced only with --overwrite (each a bad argument, exit 2)."""
    if value is None:
        return None
    path = Path(value)
    if path.is_dir():
        raise UsageError(f"--json {value} is a folder; give a file name such as {path / 'selfcheck.json'}")
    if not path.parent.is_dir():
        raise UsageError(f"--json {value}: the folder {path.parent} does not exist; create it or choose another file")
    if path.exists() and not overwrite:
        raise UsageError(f"--json {value} exists; nothing was written. Choose another file or add --overwrite")
    return path


def cmd_benchmark_selfcheck(args, tree: Tree, say) -> int:
    """The self-check's table on stdout; the full result (every row, every raw figure) only as JSON in
    --json FILE (written atomically)."""
    target = _json_target(args.json, args.overwrite)
    selfcheck = _benchmarking("selfcheck")
    result = selfcheck.run_selfcheck(quick=args.quick, progress=lambda line: say(f"  {line}"))
    say(selfcheck.format_selfcheck(result))
    if target is not None:
        _benchmarking("reporting").atomic_write_json(target, result, overwrite=args.overwrite)
        say(f"wrote {target} (the full result as JSON)")
    else:
        say("(add --json FILE to keep the full result as JSON)")
    return 0 if all(row["passed"] for row in result["rows"]) else 1


def _quality_line(q: dict) -> str:
    return f"{q['value']:.4f} [{q['ci_low']:.4f}, {q['ci_high']:.4f}] (n={q['n']})"


def say_comparison(check: dict, say, label: str = "shipped") -> bool:
    """Retrained against shipped: identical bytes or why not (the environments' differences), and the
    quality check that holds on any machine. True when the quality agrees."""
    say(f"identical to the {label} weights: {'yes' if check['identical'] else 'no'} "
        f"({label} sha256 {check['shipped_sha256']})")
    if not check["identical"]:
        if not check["environment_recorded"]:
            say(f"  the bytes cannot be expected to match: {check['differences'][0]}")
        elif check["differences"]:
            say(f"  the bytes differ because this machine's environment differs from the one that trained the "
                f"{label} weights (float32 sums round differently):")
            for reason in check["differences"]:
                say(f"    {reason}")
        else:
            say(f"  the environment matches the manifest's, so the bytes should have been identical: "
                f"the recipe, the data or the code changed since the {label} weights were trained")
    agrees = check["within_tolerance"] and check["intervals_overlap"]
    say(f"  test {check['metric']}: retrained {_quality_line(check['retrained'])}; {label} "
        f"{_quality_line(check['shipped'])}; difference {check['difference']:+.4f}, "
        f"{'agrees' if agrees else 'DISAGREES'} (tolerance {check['tolerance']:g}, 95% intervals "
        f"{'overlap' if check['intervals_overlap'] else 'do not overlap'})")
    return agrees


def cmd_benchmark_train_reference(args, tree: Tree, say) -> int:
    """Retrain a reference; compare it with the shipped one (bytes, why they differ, quality);
    with --install ship it. Exit 1 when the retrained model misses its target or disagrees with the
    shipped quality."""
    tasks = _benchmarking("tasks")
    if args.task not in tasks.TASKS:
        raise UsageError(f"unknown task {args.task!r}: valid choices are {', '.join(tasks.TASKS)}")
    if args.task == "image_classification":
        raise UsageError("image_classification uses the zoo's digits_cnn: retrain it with `tito zoo train digits_cnn`")
    spec = tasks.TASKS[args.task]
    log = (lambda line: say(f"  {line}")) if args.verbose else None
    before = tasks.read_manifest().get(spec.reference)
    if args.install:
        try:
            info = tasks.install_reference(args.task, seed=args.seed, log=log)
        except RuntimeError as exc:                       # misses the target: nothing was written
            raise TitoError(str(exc)) from exc
        digest = info["sha256"]
        say(f"installed {info['path']} (sha256 {digest}; replaced {info['replaced'] or 'nothing'})")
    else:
        model, info = tasks.train_reference(args.task, seed=args.seed, log=log)
        digest = tasks.zoo.weights_digest(model.state_dict())
        say(f"trained {spec.reference} (seed {args.seed}): sha256 {digest}; add --install to ship these")
    test = info["test"]
    say(f"test {test['metric']} {_quality_line(test)} ({test['interval']}), target {spec.target_quality}: "
        f"{test['verdict']}; training {info['train_seconds']:.1f} s")
    agrees = True
    if before is not None:
        check = tasks.compare_with_shipped(args.task, digest, test, entry=before)
        agrees = say_comparison(check, say, "previously shipped" if args.install else "shipped")
    return 0 if test["verdict"] == "meets" and agrees else 1
