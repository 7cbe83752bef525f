"""`tito zoo`: the reference models. Thin wrappers: the models, their training recipes and
evaluation live in the package (`tinytorch.models.zoo`, generated from module 09)."""
from __future__ import annotations

import importlib
from pathlib import Path

from .tree import TitoError, Tree, UsageError


def zoo_module(tree: Tree):
    try:
        return importlib.import_module("tinytorch.models.zoo")
    except ModuleNotFoundError as exc:
        if exc.name not in ("tinytorch.models", "tinytorch.models.zoo"):
            raise
        raise TitoError("tinytorch.models.zoo is not exported yet: it comes from module 09 (`tito module status`)") from exc


def model_spec(zoo, name: str):
    if name not in zoo.ZOO:
        raise UsageError(f"unknown model {name!r}: valid choices are {', '.join(zoo.ZOO)}")
    return zoo.ZOO[name]


def accuracy_line(result: dict) -> str:
    return (f"{result['accuracy']:.2%} ({result['correct']}/{result['total']}; "
            f"Wilson 95% interval {result['ci_low']:.2%} to {result['ci_high']:.2%})")


def cmd_zoo_list(args, tree: Tree, say) -> int:
    zoo = zoo_module(tree)
    manifest = zoo.read_manifest()
    for name, spec in zoo.ZOO.items():
        entry = manifest.get(name)
        shipped = (f"shipped, test accuracy {entry['test_accuracy']:.2%} when trained" if entry else "no shipped weights")
        say(f"{name}: {spec.description}; target {spec.target:.0%}; {shipped}")
    return 0


def cmd_zoo_eval(args, tree: Tree, say) -> int:
    zoo = zoo_module(tree)
    spec = model_spec(zoo, args.name)
    model = zoo.load_model(args.name, weights=Path(args.weights) if args.weights else None)
    result = zoo.evaluate(model, args.name, split=args.split)
    say(f"{args.name} on the digits {args.split} split: top-1 accuracy {accuracy_line(result)}")
    met = result["accuracy"] >= spec.target
    conclusive = result["ci_low"] >= spec.target
    say(f"target {spec.target:.0%}: {'met' if met else 'NOT met'}"
        f"{' (conclusively: the interval lower bound clears it)' if conclusive else ''}")
    return 0 if met else 1


def cmd_zoo_train(args, tree: Tree, say) -> int:
    zoo = zoo_module(tree)
    spec = model_spec(zoo, args.name)
    if args.out and args.install:
        raise UsageError("give --out FILE or --install, not both")
    out = Path(args.out) if args.out else None
    if out is not None and out.exists():
        raise UsageError(f"--out {out} already exists; nothing was overwritten. Choose a new file name")
    report = zoo.train(args.name, seed=args.seed, log=say)
    result = report.test
    say(f"trained {args.name} (seed {report.seed}) in {report.seconds:.1f} s: test accuracy {accuracy_line(result)}")
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
