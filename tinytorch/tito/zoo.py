"""`tito zoo` (the reference models) and `tito bench core` (the framework core's performance figures).

Thin wrappers: the models, their training recipes and the measurements live in the package
(`tinytorch.models.zoo`, `tinytorch.core.spatial.benchmark_conv2d`), generated from module 09.
"""
from __future__ import annotations

import importlib
from pathlib import Path

from .tree import TitoError, Tree, UsageError


def _zoo(tree: Tree):
    try:
        return importlib.import_module("tinytorch.models.zoo")
    except ModuleNotFoundError as exc:
        if exc.name not in ("tinytorch.models", "tinytorch.models.zoo"):
            raise
        raise TitoError("tinytorch.models.zoo is not exported yet: it comes from module 09 (`tito module status`)") from exc


def _spec(zoo, name: str):
    if name not in zoo.ZOO:
        raise UsageError(f"unknown model {name!r}: valid choices are {', '.join(zoo.ZOO)}")
    return zoo.ZOO[name]


def _accuracy_line(result: dict) -> str:
    return (f"{result['accuracy']:.2%} ({result['correct']}/{result['total']}; "
            f"Wilson 95% interval {result['ci_low']:.2%} to {result['ci_high']:.2%})")


def cmd_zoo_list(args, tree: Tree, say) -> int:
    zoo = _zoo(tree)
    manifest = zoo.read_manifest()
    for name, spec in zoo.ZOO.items():
        entry = manifest.get(name)
        shipped = (f"shipped, test accuracy {entry['test_accuracy']:.2%} when trained" if entry else "no shipped weights")
        say(f"{name}: {spec.description}; target {spec.target:.0%}; {shipped}")
    return 0


def cmd_zoo_eval(args, tree: Tree, say) -> int:
    zoo = _zoo(tree)
    spec = _spec(zoo, args.name)
    model = zoo.load_model(args.name, weights=Path(args.weights) if args.weights else None)
    result = zoo.evaluate(model, args.name, split=args.split)
    say(f"{args.name} on the digits {args.split} split: top-1 accuracy {_accuracy_line(result)}")
    met = result["accuracy"] >= spec.target
    conclusive = result["ci_low"] >= spec.target
    say(f"target {spec.target:.0%}: {'met' if met else 'NOT met'}"
        f"{' (conclusively: the interval lower bound clears it)' if conclusive else ''}")
    return 0 if met else 1


def cmd_zoo_train(args, tree: Tree, say) -> int:
    zoo = _zoo(tree)
    spec = _spec(zoo, args.name)
    if args.out and args.install:
        raise UsageError("give --out FILE or --install, not both")
    out = Path(args.out) if args.out else None
    if out is not None and out.exists():
        raise UsageError(f"--out {out} already exists; nothing was overwritten. Choose a new file name")
    report = zoo.train(args.name, seed=args.seed, log=say)
    result = report.test
    say(f"trained {args.name} (seed {report.seed}) in {report.seconds:.1f} s: test accuracy {_accuracy_line(result)}")
    if report.seconds_to_target is not None:
        say(f"reached the {spec.target:.0%} target after {report.seconds_to_target:.1f} s of training")
    if args.install:
        path, digest = zoo.install_weights(args.name, report)
        say(f"installed {path} (sha256 {digest}) and updated the manifest")
    else:
        path = out or tree.root / "results" / "zoo" / f"{args.name}-seed{report.seed}.npz"
        if path.exists():
            raise TitoError(f"{path} already exists; nothing was overwritten. Pass --out FILE")
        digest = zoo.save_weights(report.model, path)
        say(f"saved {path} (sha256 {digest})")
    shipped = zoo.read_manifest().get(args.name)
    if shipped and not args.install:
        same = shipped["sha256"] == digest
        say(f"identical to the shipped weights: {'yes' if same else 'no'} (shipped sha256 {shipped['sha256']})")
    return 0 if result["accuracy"] >= spec.target else 1


def cmd_bench_core(args, tree: Tree, say) -> int:
    zoo = _zoo(tree)
    from tinytorch.core.spatial import benchmark_conv2d

    say("Training from scratch to the test-accuracy target (seeded recipes of tinytorch.models.zoo):")
    for name in args.models or list(zoo.ZOO):
        spec = _spec(zoo, name)
        report = zoo.train(name, log=lambda line: None)
        reached = (f"reached {spec.target:.0%} after {report.seconds_to_target:.1f} s of training"
                   if report.seconds_to_target is not None else f"did NOT reach {spec.target:.0%}")
        say(f"  {name}: {reached}; full recipe {report.seconds:.1f} s, final test accuracy {_accuracy_line(report.test)}")
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
