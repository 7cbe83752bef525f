"""`tito zoo`: the reference models. Thin wrappers: the models, their training recipes and
evaluation live in the package (`tinytorch.models.zoo`, generated from module 09)."""
from __future__ import annotations

from pathlib import Path

from .tree import TitoError, Tree, UsageError, exported_module


def zoo_module(tree: Tree):
    zoo = exported_module("tinytorch.models.zoo")
    if zoo is None:
        raise TitoError("tinytorch.models.zoo is not exported yet: it comes from module 09 (`tito module status`)")
    return zoo


# Course modules that build optimized variants of the baselines (each has ZOO_VARIANTS,
# build_zoo_variant(name, seed) and load_zoo_variant(name, state)).
VARIANT_PROVIDERS = ("tinytorch.optimization.quantization", "tinytorch.optimization.compression")


def _exported_providers():
    """(module name, module) of every variant provider that is exported in this tree."""
    found = [(module_name, exported_module(module_name)) for module_name in VARIANT_PROVIDERS]
    return [(module_name, module) for module_name, module in found if module is not None]


def _variant_provider(name: str):
    """(module name, module) of the provider that builds variant `name`, or None."""
    return next(((module_name, module) for module_name, module in _exported_providers()
                 if name in getattr(module, "ZOO_VARIANTS", {})), None)


def _known(zoo) -> list[str]:
    names = list(zoo.model_names())
    for _, module in _exported_providers():
        names += [n for n in getattr(module, "ZOO_VARIANTS", {}) if n not in names]
    return names


def model_spec(zoo, name: str):
    if name not in zoo.ZOO and name not in _known(zoo):
        raise UsageError(f"unknown model {name!r}: valid choices are {', '.join(_known(zoo))}")
    return zoo.ZOO.get(name)


def accuracy_line(result: dict) -> str:
    return (f"{result['accuracy']:.2%} ({result['correct']}/{result['total']}; "
            f"Wilson 95% interval {result['ci_low']:.2%} to {result['ci_high']:.2%})")


def cmd_zoo_list(args, tree: Tree, say) -> int:
    zoo = zoo_module(tree)
    manifest = zoo.read_manifest()
    for name in _known(zoo):
        entry = manifest.get(name)
        shipped = (f"shipped, test accuracy {entry['test_accuracy']:.2%} when made" if entry else "no shipped weights")
        if name in zoo.ZOO:
            spec = zoo.ZOO[name]
            say(f"{name}: {spec.description}; target {spec.target:.0%}; {shipped}")
        else:
            provider = _variant_provider(name)
            about = provider[1].ZOO_VARIANTS[name] if provider else f"built by {entry['provider']}"
            target = f"target {entry['target']:.2%}; " if entry else ""
            say(f"{name}: {about}; {target}{shipped}")
    return 0


def cmd_zoo_eval(args, tree: Tree, say) -> int:
    zoo = zoo_module(tree)
    model_spec(zoo, args.name)
    weights = Path(args.weights) if args.weights else None
    if weights is not None and not weights.is_file():   # a path named on the command line: a bad argument
        what = "is a folder, not a file" if weights.is_dir() else "does not exist"
        raise UsageError(f"--weights {weights} {what}: give a weights .npz file, e.g. one written by "
                         f"`tito zoo train {args.name} --out FILE`")
    import zipfile

    if weights is not None and not zipfile.is_zipfile(weights):   # every .npz is a zip archive
        raise UsageError(f"--weights {weights} is not an .npz archive: give a weights file written by "
                         f"`tito zoo train {args.name} --out FILE` (or numpy.savez)")
    try:
        model = zoo.load_model(args.name, weights=weights)
    except (OSError, ValueError, KeyError) as exc:   # not an .npz, weights of another model, a changed shipped file
        raise TitoError(f"cannot load the weights of {args.name}: {exc}") from None
    result = zoo.evaluate(model, args.name, split=args.split)
    say(f"{args.name} on the digits {args.split} split: top-1 accuracy {accuracy_line(result)}")
    target = zoo.target_of(args.name)
    met = result["accuracy"] >= target
    conclusive = result["ci_low"] >= target
    say(f"target {target:.2%}: {'met' if met else 'NOT met'}"
        f"{' (conclusively: the interval lower bound clears it)' if conclusive else ''}")
    return 0 if met else 1


def cmd_zoo_train(args, tree: Tree, say) -> int:
    zoo = zoo_module(tree)
    spec = model_spec(zoo, args.name)
    if spec is None:
        return _train_variant(args, tree, zoo, say)
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
    if not args.install:
        say_comparison(zoo, args.name, digest, result, say)
    return 0 if result["accuracy"] >= spec.target else 1


def say_comparison(zoo, name: str, digest: str, result: dict, say) -> None:
    """Retrained against shipped: identical bytes, or why not, and the accuracy check that holds on
    any machine (the recipe is right when the accuracy agrees, even where the bytes cannot)."""
    check = zoo.compare_with_shipped(name, digest, result)
    if check is None:
        return
    say(f"identical to the shipped weights: {'yes' if check['identical'] else 'no'} (shipped sha256 {check['shipped_sha256']})")
    if not check["identical"]:
        if check["differences"]:
            say("  the bytes differ because this machine's environment differs from the one that trained the "
                "shipped weights (float32 sums round differently):")
            for reason in check["differences"]:
                say(f"    {reason}")
        else:
            say("  the environment matches the manifest's, so the bytes should have been identical: "
                "the recipe or the code changed since the weights were shipped")
    shipped = check["shipped"]
    verdict = ("agrees" if check["within_tolerance"] and check["intervals_overlap"] else "DISAGREES")
    say(f"  test accuracy: retrained {accuracy_line(result)}; shipped {accuracy_line(shipped)}; "
        f"difference {check['accuracy_difference'] * 100:+.2f} points, {verdict} (tolerance "
        f"{check['tolerance'] * 100:.0f} points, intervals {'overlap' if check['intervals_overlap'] else 'do not overlap'})")


def _train_variant(args, tree: Tree, zoo, say) -> int:
    """Rebuild an optimized variant with its provider's recipe; save or install it."""
    if args.out and args.install:
        raise UsageError("give --out FILE or --install, not both")
    provider = _variant_provider(args.name)
    if provider is None:
        raise TitoError(f"{args.name} is built by a module that is not exported yet: complete it first")
    module_name, module = provider
    seed = 0 if args.seed is None else args.seed
    model, base, target, recipe = module.build_zoo_variant(args.name, seed=seed)
    result = zoo.evaluate(model, base)
    say(f"built {args.name} (seed {seed}) with {module_name}: test accuracy {accuracy_line(result)}; target {target:.2%}")
    if args.install:
        path, digest = zoo.install_variant(args.name, model, module_name, base, target, recipe)
        say(f"installed {path} (sha256 {digest}) and updated the manifest")
    else:
        path = Path(args.out) if args.out else tree.root / "results" / "zoo" / f"{args.name}-seed{seed}.npz"
        if path.exists():
            raise UsageError(f"{path} already exists; nothing was overwritten. Choose a new file name with --out")
        digest = zoo.save_weights(model, path)
        say(f"saved {path} (sha256 {digest})")
        say_comparison(zoo, args.name, digest, result, say)
    return 0 if result["accuracy"] >= target else 1
