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
    folder = suite.generate_report()
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
    json_path, summary = runner.generate_compliance_report(results, stamp / "compliance.json")
    passed = sum(bool(r["compliant"]) for r in results.values())
    say(f"Compliance Rate: {passed}/{len(results)}; report: {summary} and {json_path}")
    return 0


def cmd_benchmark_selfcheck(args, tree: Tree, say) -> int:
    selfcheck = _benchmarking("selfcheck")
    if args.json and Path(args.json).exists() and not args.overwrite:
        raise TitoError(f"{args.json} exists; choose another file or add --overwrite")
    result = selfcheck.run_selfcheck(quick=args.quick, progress=lambda line: say(f"  {line}"))
    say(selfcheck.format_selfcheck(result))
    if args.json:
        _benchmarking("reporting").atomic_write_json(Path(args.json), result, overwrite=args.overwrite)
        say(f"wrote {args.json}")
    else:
        say(json.dumps(result, indent=2, sort_keys=True, default=str))
    return 0 if all(row["passed"] for row in result["rows"]) else 1


def cmd_benchmark_train_reference(args, tree: Tree, say) -> int:
    tasks = _benchmarking("tasks")
    if args.task not in tasks.TASKS:
        raise UsageError(f"unknown task {args.task!r}: valid choices are {', '.join(tasks.TASKS)}")
    if args.task == "image_classification":
        raise UsageError("image_classification uses the zoo's digits_cnn: retrain it with `tito zoo train digits_cnn`")
    log = (lambda line: say(f"  {line}")) if args.verbose else None
    if args.install:
        info = tasks.install_reference(args.task, seed=args.seed, log=log)
        say(f"installed {info['path']} (sha256 {info['sha256']}; replaced {info['replaced'] or 'nothing'})")
    else:
        model, info = tasks.train_reference(args.task, seed=args.seed, log=log)
        digest = tasks.zoo.weights_digest(model.state_dict())
        shipped = tasks.read_manifest().get(tasks.TASKS[args.task].reference, {}).get("sha256")
        same = "identical to" if digest == shipped else "different from"
        say(f"trained {tasks.TASKS[args.task].reference}: sha256 {digest}, {same} the shipped weights "
            f"({shipped}); add --install to ship these")
    test = info["test"]
    say(f"test {test['metric']} {test['value']:.4f} [{test['ci_low']:.4f}, {test['ci_high']:.4f}] ({test['interval']}), "
        f"target {tasks.TASKS[args.task].target_quality}; training {info['train_seconds']:.1f} s")
    return 0
