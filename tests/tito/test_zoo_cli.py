"""`tito zoo list|eval|train` and `tito bench core`."""
import re

import pytest


def test_zoo_eval_prints_measured_accuracy(tree, tito):
    for name, target in (("digits_cnn", "97.00%"), ("digits_mlp", "95.00%")):
        out = tito(tree, "zoo", "eval", name, check=0).stdout
        assert re.search(rf"{name} on the digits test split: top-1 accuracy \d+\.\d\d% \(\d+/359; Wilson 95% interval", out)
        assert f"target {target}: met" in out


def test_zoo_list_and_unknown_names(tree, tito):
    out = tito(tree, "zoo", "list", check=0).stdout
    assert "digits_mlp:" in out and "digits_cnn:" in out and "shipped" in out
    proc = tito(tree, "zoo", "eval", "resnet50", check=2)
    assert "unknown model 'resnet50': valid choices are digits_mlp, digits_cnn" in proc.stderr


def _same_environment_as_shipped(name):
    """fingerprint_differences of this process (the tito child inherits its environment)."""
    from tinytorch.models import zoo

    return not zoo.fingerprint_differences(zoo.read_manifest()[name]["environment"])


def _assert_compared_with_shipped(out, name):
    """Identical bytes exactly where the environment matches; otherwise the reasons; always the
    accuracy comparison that holds on any machine."""
    identical = "identical to the shipped weights: yes" in out
    assert identical or "identical to the shipped weights: no" in out
    if _same_environment_as_shipped(name):
        assert identical, out
    elif not identical:
        assert "the bytes differ because this machine's environment differs" in out
        assert re.search(r"^    (CPU|machine|numpy|BLAS \w+|the manifest does not record)", out, flags=re.M), out
    assert re.search(r"test accuracy: retrained [\d.]+% \(\d+/359; .*\); shipped [\d.]+% \(\d+/359; .*\); "
                     r"difference [+-][\d.]+ points, agrees \(tolerance 2 points, intervals overlap\)", out), out


def test_zoo_train_compares_with_the_shipped_mlp(tree, tito, tmp_path):
    out_file = tmp_path / "mlp.npz"
    out = tito(tree, "zoo", "train", "digits_mlp", "--out", str(out_file), check=0).stdout
    assert out_file.is_file()
    assert re.search(r"trained digits_mlp \(seed 0\) in [\d.]+ s: test accuracy", out)
    _assert_compared_with_shipped(out, "digits_mlp")
    proc = tito(tree, "zoo", "train", "digits_mlp", "--out", str(out_file), check=2)
    assert "already exists; nothing was overwritten" in proc.stderr
    out = tito(tree, "zoo", "eval", "digits_mlp", "--weights", str(out_file), check=0).stdout
    assert "target 95.00%: met" in out


def test_zoo_train_on_another_blas_kernel_says_why_the_bytes_differ(tree, tito, tmp_path, monkeypatch):
    """A machine whose BLAS kernel differs (simulated with OPENBLAS_CORETYPE): not identical, the
    kernel named as the reason, and the accuracy still agrees with the shipped weights."""
    from tinytorch.models import zoo

    if zoo.environment_fingerprint()["blas"]["library"] != "openblas":
        pytest.skip("numpy does not use OpenBLAS here: OPENBLAS_CORETYPE cannot change its kernel")
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Prescott")
    out = tito(tree, "zoo", "train", "digits_mlp", "--out", str(tmp_path / "mlp.npz"), check=0).stdout
    assert "identical to the shipped weights: no" in out
    shipped_kernel = zoo.read_manifest()["digits_mlp"]["environment"]["blas"]["kernel"]
    assert re.search(rf"^    BLAS kernel: \w+ here, {shipped_kernel} in the manifest$", out, flags=re.M), out
    assert re.search(r"difference [+-][\d.]+ points, agrees", out), out


def test_zoo_eval_detects_tampered_shipped_weights(tree, tito):
    path = tree / "tinytorch/assets/zoo/digits_mlp.npz"
    path.write_bytes((tree / "tinytorch/assets/zoo/digits_cnn.npz").read_bytes())
    proc = tito(tree, "zoo", "eval", "digits_mlp", check=1)
    assert "does not match the manifest" in proc.stderr


def test_bench_core_prints_measured_figures(tree, tito):
    out = tito(tree, "bench", "core", "digits_mlp", check=0).stdout
    assert re.search(r"digits_mlp: reached 95% after [\d.]+ s of training", out)
    rows = re.findall(r"GFLOP/s = \d+% of matmul's [\d.]+ GFLOP/s", out)
    assert len(rows) == 2 and "BLAS openblas" in out


def test_bench_profiler_prints_roofline_and_latency_checks(tree, tito, tmp_path, monkeypatch):
    monkeypatch.setenv("TINYTORCH_CACHE_DIR", str(tmp_path / "cache"))
    proc = tito(tree, "bench", "profiler")
    assert proc.returncode in (0, 1), proc.stderr  # 1 only when a check missed its target on a busy machine
    out = proc.stdout
    assert "Machine roofline (measured:" in out and (tmp_path / "cache" / "machine_peak.json").is_file()
    assert re.search(r"peak [\d.]+ GFLOP/s .* copy bandwidth [\d.]+ GB/s", out)
    rows = re.findall(r"^  (busy-wait 200 us|busy-wait 2 ms|python ~200 ns): truth [\d.]+ us, measured [\d.]+ us, "
                      r"error [+-][\d.]+% \((within|OUTSIDE) the (3|10)% target", out, flags=re.M)
    assert [row[0] for row in rows] == ["busy-wait 200 us", "busy-wait 2 ms", "python ~200 ns"]
    assert proc.returncode == (0 if all(row[1] == "within" for row in rows) else 1)


def test_bench_optimization_prints_measured_targets(tree, tito):
    out = tito(tree, "bench", "optimization", "quantization", "compression", check=0).stdout
    assert re.search(r"int8 per-channel \+ calibration stores \d+ parameter bytes against 24360 for float32: [\d.]+x smaller", out)
    assert re.search(r"channels\+finetune: [\d.]+x faster than baseline \(95% CI [\d.]+-[\d.]+\)", out)
    proc = tito(tree, "bench", "optimization", "pruning", check=2)
    assert "unknown technique(s) pruning: valid choices are quantization, compression, acceleration" in proc.stderr


def test_optimized_variants_evaluate_and_reproduce(tree, tito, tmp_path):
    out = tito(tree, "zoo", "list", check=0).stdout
    for name in ("digits_cnn_int8", "digits_cnn_pruned", "digits_cnn_distilled"):
        assert f"{name}:" in out
    out = tito(tree, "zoo", "eval", "digits_cnn_int8", check=0).stdout
    assert re.search(r"digits_cnn_int8 on the digits test split: top-1 accuracy [\d.]+%", out) and ": met" in out
    out = tito(tree, "zoo", "train", "digits_cnn_int8", "--out", str(tmp_path / "i8.npz"), check=0).stdout
    _assert_compared_with_shipped(out, "digits_cnn_int8")


def test_zoo_eval_bad_weights_files_are_one_line_errors(tree, tito, tmp_path):
    """--weights: a missing path or a non-.npz file is a bad argument (2); weights of another model, or shipped
    weights that were changed, are a failed check (1). Each is one `tito: error:` line naming the file, never a
    traceback (before: FileNotFoundError, IsADirectoryError and ValueError tracebacks)."""
    (tmp_path / "junk.npz").write_text("not an archive")
    cnn = tree / "tinytorch/assets/zoo/digits_cnn.npz"
    cases = [(["--weights", str(tmp_path / "none.npz")], 2, f"--weights {tmp_path / 'none.npz'} does not exist"),
             (["--weights", str(tmp_path)], 2, f"--weights {tmp_path} is a folder, not a file"),
             (["--weights", str(tmp_path / "junk.npz")], 2, f"--weights {tmp_path / 'junk.npz'} is not an .npz archive"),
             (["--weights", str(cnn)], 1, "cannot load the weights of digits_mlp: load_state_dict(strict=True)")]
    for extra, code, message in cases:
        proc = tito(tree, "zoo", "eval", "digits_mlp", *extra, check=code)
        assert proc.stderr.startswith(f"tito: error: {message}") and len(proc.stderr.splitlines()) == 1, proc.stderr
    (tree / "tinytorch/assets/zoo/digits_mlp.npz").write_bytes(cnn.read_bytes())
    proc = tito(tree, "zoo", "eval", "digits_mlp", check=1)
    assert proc.stderr.startswith("tito: error: cannot load the weights of digits_mlp: ") and \
        "does not match the manifest" in proc.stderr and "Traceback" not in proc.stderr
