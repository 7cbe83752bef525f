"""`tito bench`: performance figures measured on this machine, printed (never asserted in tests).

Thin wrappers over measurements that live in the package: training the reference models
(`tinytorch.models.zoo`), `tinytorch.core.spatial.benchmark_conv2d`, and the profiler's
`latency_accuracy_check` and `measure_machine_peak` (module 14).
"""
from __future__ import annotations

import importlib

from .tree import TitoError, Tree, exported_module
from .zoo import accuracy_line, model_spec, zoo_module


def cmd_bench_core(args, tree: Tree, say) -> int:
    zoo = zoo_module(tree)
    from tinytorch.core.spatial import benchmark_conv2d

    say("Training from scratch to the test-accuracy target (seeded recipes of tinytorch.models.zoo):")
    for name in args.models or list(zoo.ZOO):
        spec = model_spec(zoo, name)
        report = zoo.train(name, log=lambda line: None)
        reached = (f"reached {spec.target:.0%} after {report.seconds_to_target:.1f} s of training"
                   if report.seconds_to_target is not None else f"did NOT reach {spec.target:.0%}")
        say(f"  {name}: {reached}; full recipe {report.seconds:.1f} s, final test accuracy {accuracy_line(report.test)}")
    say("Conv2d forward (im2col + batched matmul), against numpy float32 matmul measured in the same run")
    say(f"  ({_blas_threads()}; the ratio depends on it: set OPENBLAS_NUM_THREADS=1 for a one-core comparison):")
    for row in benchmark_conv2d():
        torch_part = (f"; torch CPU {row['torch_ms_median']:.3f} ms (ours / torch = {row['torch_ratio']:.1f}x)"
                      if row.get("torch_ratio") is not None else "; torch not installed")
        say(f"  {row['input_shape']} -> {row['output_shape']}: {row['ms_median']:.3f} ms median, "
            f"{row['gflops']:.2f} GFLOP/s = {row['ratio_to_matmul']:.0%} of matmul's "
            f"{row['matmul_gflops']:.1f} GFLOP/s{torch_part}")
        if row.get("warning"):
            say(f"    {row['warning']}")
    return 0


def _blas_threads() -> str:
    """The BLAS libraries numpy uses and their thread counts, as threadpoolctl reads them."""
    from threadpoolctl import threadpool_info

    pools = [f"{p.get('internal_api')} {p.get('version')}: {p.get('num_threads')} thread(s)"
             for p in threadpool_info() if p.get("user_api") == "blas"]
    return "BLAS " + ("; ".join(pools) if pools else "not detected")


def cmd_bench_profiler(args, tree: Tree, say) -> int:
    try:
        profiler = importlib.import_module("tinytorch.profiling.profiler")
    except ModuleNotFoundError as exc:
        if exc.name not in ("tinytorch.profiling", "tinytorch.profiling.profiler"):
            raise
        raise TitoError("tinytorch.profiling.profiler is not exported yet: it comes from module 14") from exc
    peak = profiler.measure_machine_peak(refresh=args.refresh)
    say(f"Machine roofline ({peak['source']}: {peak['reason']}; {peak['cache_path']}):")
    say(f"  peak {peak['peak_gflops']:.1f} GFLOP/s (float32 {peak['matmul']['size']}^2 matmul, {peak['matmul']['noise']}); "
        f"copy bandwidth {peak['bandwidth_gbs']:.1f} GB/s ({peak['copy']['noise']}); ridge {peak['ridge_flops_per_byte']:.2f} FLOP/byte")
    say(f"  ({_blas_threads()})")
    say("measure_latency against independently established truths:")
    misses = 0
    for row in profiler.latency_accuracy_check():
        verdict = "within" if row["within_target"] else "OUTSIDE"
        misses += not row["within_target"]
        say(f"  {row['callable']}: truth {row['truth_ms'] * 1e3:.3f} us, measured {row['measured_ms'] * 1e3:.3f} us, "
            f"error {row['relative_error']:+.2%} ({verdict} the {row['target']:.0%} target; {row['calls_per_sample']} call(s) per sample)")
        say(f"    truth: {row['truth_method']}")
        if row["warning"]:
            say(f"    {row['warning']}")
    return 0 if not misses else 1


# name -> (generated module, what it measures): the optimization modules 15-17.
OPTIMIZATION_REPORTS = {
    "quantization": ("tinytorch.optimization.quantization", "digits_cnn float32 vs int8 (per-tensor, per-channel, calibrated, combined)"),
    "compression": ("tinytorch.optimization.compression", "digits_cnn vs pruned, channel-pruned and distilled variants"),
    "acceleration": ("tinytorch.optimization.acceleration", "matmul variants, tiling, fusion, BLAS threads"),
}


def cmd_bench_optimization(args, tree: Tree, say) -> int:
    import pandas as pd

    chosen = args.techniques or list(OPTIMIZATION_REPORTS)
    unknown = [name for name in chosen if name not in OPTIMIZATION_REPORTS]
    if unknown:
        raise TitoError(f"unknown technique(s) {', '.join(unknown)}: valid choices are {', '.join(OPTIMIZATION_REPORTS)}", exit_code=2)
    say(f"({_blas_threads()})")
    with pd.option_context("display.width", 200, "display.max_columns", 30, "display.max_colwidth", 40):
        for name in chosen:
            module_name, what = OPTIMIZATION_REPORTS[name]
            module = exported_module(module_name)
            if module is None:
                say(f"{name}: not exported yet ({module_name}); skipped")
                continue
            say(f"== {name}: {what}")
            _print_report(name, module, say)
    return 0


def _print_report(name: str, module, say) -> None:
    if name == "quantization":
        report = module.quantization_report()
        say(report["table"].to_string(float_format=lambda v: f"{v:.4g}"))
        for sentence in module.report_sentences(report):
            say(sentence)
    elif name == "compression":
        module.compression_report(verbose=True)  # prints its table and the target sentence itself
    else:
        table = module.acceleration_report()
        say(table.drop(columns=["warning"]).to_string(float_format=lambda v: f"{v:.4g}"))
        for _, row in table[table["warning"].notna()].iterrows():
            say(f"  {row['group']} / {row['variant']}: {row['warning']}")
        say("Fusion (target: fused Linear+bias+ReLU measurably faster at batch 64):")
        for line in module.fusion_verdict(table):
            say(line)


def _grade_copies(grader, example, copies, folder, say):
    """Grade `copies` renamed copies of one example submission; (wall seconds, results)."""
    import shutil
    import time

    subs = folder / f"subs-{copies}"
    for k in range(copies):
        shutil.copytree(example, subs / f"{example.name}{k:02d}")
    start = time.perf_counter()
    results = grader.grade_all(subs, folder / f"out-{copies}", seed=copies)
    return time.perf_counter() - start, results


SPEEDUP_HALF_WIDTH_TARGET = 0.03   # the baseline graded against itself: 95% interval within +-3% of its point
SPEEDUP_POINT_TARGET = 0.02        # ... and the point within 2% of 1.0
GRADING_WALL_TARGET_S = 15.0       # seconds of grading per submission (all five events)


def _precision(grader, examples, runs, folder, say):
    """The latency verdict's precision: the baseline example graded `runs` times against the baseline (speed-up
    1 by construction) and the pruned example `runs` times; every figure is printed. Returns whether the
    baseline-vs-baseline targets held in every run."""
    held = True
    for name in ("baseline", "pruned"):
        say(f"  {name}: graded {runs} time(s), each with fresh workers and a fresh secret seed")
        for k in range(runs):
            record = grader.grade_submission(examples / name, seed=1000 + k)
            speed = record["scores"].get("latency_sprint")
            if speed is None:
                say(f"    run {k + 1}: {record['status']}: {record['reason']}")
                held = False
                continue
            half = (speed["high"] - speed["low"]) / 2 / speed["score"]
            line = (f"    run {k + 1}: speed-up {speed['score']:.3f} [{speed['low']:.3f}, {speed['high']:.3f}], "
                    f"half-width {half:.1%} of the point; graded in {record['wall_s']:.1f} s")
            if name == "baseline":
                ok = half <= SPEEDUP_HALF_WIDTH_TARGET and abs(speed["score"] - 1) <= SPEEDUP_POINT_TARGET
                held &= ok
                line += (f"; targets: half-width <= {SPEEDUP_HALF_WIDTH_TARGET:.0%}, |point - 1| <= "
                         f"{SPEEDUP_POINT_TARGET:.0%}: {'met' if ok else 'NOT MET'}")
            if record["wall_s"] > GRADING_WALL_TARGET_S:
                line += f"; over the {GRADING_WALL_TARGET_S:g} s grading target"
            say(line)
    return held


def cmd_bench_olympics(args, tree, say) -> int:
    """Issue 7's and 12's targets: the latency verdict's precision (the baseline against itself: a speed-up
    interval within +-3% of a point within 2% of 1.0; the pruned example's interval), grading time for one
    submission (all events) and for many, and score stability (the bundled examples graded twice)."""
    import tempfile
    from pathlib import Path

    grader = importlib.import_module("tinytorch.tito.olympics.grader")
    examples = Path(importlib.import_module("tinytorch").__file__).parent / "assets" / "olympics" / "examples"
    example = examples / args.example
    if not (example / "submission.py").is_file():
        raise TitoError(f"no example submission {args.example!r} in {examples}", exit_code=2)
    bad = [n for n in args.counts if n < 1]
    if bad or getattr(args, "precision", 0) < 0:
        raise TitoError(f"--counts takes numbers of submissions >= 1 (got {bad}) and --precision a number of runs "
                        f">= 0 (got {getattr(args, 'precision', 0)})" if bad else
                        f"--precision {args.precision}: give a number of runs >= 0 (0 skips it)", exit_code=2)
    with tempfile.TemporaryDirectory(prefix="tito-bench-olympics-") as tmp:
        folder = Path(tmp)
        if getattr(args, "precision", 0):
            say("Precision of the latency verdict (speed-up = median over interleaved rounds of baseline ms / "
                "submission ms, 95% two-level bootstrap interval over sessions and rounds):")
            held = _precision(grader, examples, args.precision, folder, say)
            say(f"  baseline-vs-baseline targets {'met in every run' if held else 'NOT met in every run'}")
        say(f"Grading copies of the {args.example!r} example (all five events), each in its own sandboxed process:")
        first = None
        for copies in args.counts:
            wall, results = _grade_copies(grader, example, copies, folder, say)
            statuses = sorted({r["status"] for r in results["submissions"].values()})
            per = wall / copies
            first = first or per
            say(f"  {copies:>3} submission(s): {wall:6.1f} s wall, {per:5.1f} s per submission "
                f"({per / first:.2f}x the per-submission time of the first row); statuses {statuses}")
        say("Stability: the bundled example submissions graded twice (separate runs, fresh secret shuffles):")
        runs = [grader.grade_all(examples, folder / f"twice-{k}") for k in range(2)]
        same, overlapping, compared = 0, 0, 0
        for sub_id, first_record in sorted(runs[0]["submissions"].items()):
            second_record = runs[1]["submissions"].get(sub_id, {})
            for event, a in first_record.get("scores", {}).items():
                b = second_record.get("scores", {}).get(event)
                if b is None:
                    continue
                medal_a, medal_b = (next((e.get("medal") for e in r["rankings"][event] if e["id"] == sub_id), None)
                                    for r in runs)
                overlap = a["low"] <= b["high"] and b["low"] <= a["high"]
                compared += 1
                same += medal_a == medal_b
                overlapping += overlap
                say(f"  {sub_id:<10} {event:<17} {a['score']:.4g} [{a['low']:.4g}, {a['high']:.4g}] {medal_a or '-':<6} | "
                    f"{b['score']:.4g} [{b['low']:.4g}, {b['high']:.4g}] {medal_b or '-':<6}"
                    f"{'' if overlap else '  intervals DO NOT overlap'}{'' if medal_a == medal_b else '  medal CHANGED'}")
        say(f"  same medal in {same}/{compared} (submission, event) pairs; intervals overlap in {overlapping}/{compared}")
    return 0
