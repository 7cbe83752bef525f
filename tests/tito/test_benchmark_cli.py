"""`tito benchmark run | tinymlperf | selfcheck | train-reference` through a subprocess, on a copy of the tree."""
import json
import re

import pytest


def test_benchmark_run_writes_a_report(tree, tito, tmp_path):
    out = tmp_path / "bench"
    proc = tito(tree, "benchmark", "run", "--models", "digits_cnn", "digits_cnn_distilled", "--out", str(out),
                "--max-time", "0.5", check=0)
    assert "Benchmarking digits_cnn, digits_cnn_distilled on the digits test split (359 images)" in proc.stdout
    assert "== latency" in proc.stdout and "== accuracy" in proc.stdout and "report:" in proc.stdout
    (folder,) = out.iterdir()
    doc = json.loads((folder / "results.json").read_text())
    assert doc["models"] == ["digits_cnn", "digits_cnn_distilled"]
    assert doc["results"]["accuracy"]["digits_cnn"]["summary"]["count"] == 359
    assert (folder / "report.html").exists() and (folder / "pareto_latency_accuracy.png").exists()


def test_benchmark_run_bad_models(tree, tito):
    proc = tito(tree, "benchmark", "run", "--models", "digits_cnn", "no_such_model")
    assert proc.returncode == 2 and "unknown model(s) no_such_model" in proc.stderr and "digits_mlp" in proc.stderr
    proc = tito(tree, "benchmark", "run", "--models", "digits_cnn", "digits_mlp")
    assert proc.returncode == 2 and "separate runs" in proc.stderr


def test_benchmark_tinymlperf_too_few_runs_is_a_bad_argument(tree, tito, tmp_path):
    proc = tito(tree, "benchmark", "tinymlperf", "--runs", "2", "--out", str(tmp_path / "out"), check=2)
    assert proc.stderr.strip().splitlines() == [
        "tito: error: --runs 2 is too few: performance mode reports the median of 5 windows, so it needs at "
        "least 5 single-sample runs (default 100)"]
    assert not (tmp_path / "out").exists() and "Traceback" not in proc.stderr


def test_benchmark_tinymlperf_one_task(tree, tito, tmp_path):
    proc = tito(tree, "benchmark", "tinymlperf", "--task", "keyword_spotting", "--runs", "10", "--out",
                str(tmp_path / "perf"), check=0)
    assert "keyword_spotting: accuracy mode" in proc.stdout and "Compliance Rate:" in proc.stdout
    (folder,) = (tmp_path / "perf").iterdir()
    summary = (folder / "compliance_summary.md").read_text()
    assert "TinyMLPerf Compliance Report" in summary and "keyword_spotting" in summary
    assert json.loads((folder / "compliance.json").read_text())["benchmarks"] == 1
    proc = tito(tree, "benchmark", "tinymlperf", "--task", "speech")
    assert proc.returncode == 2 and "unknown task(s) speech" in proc.stderr


def _no_json(text):
    """True when no line of text is a JSON document or part of one (the selfcheck used to dump ~500)."""
    return not any(line.strip() in ("{", "}", "[", "]") or line.lstrip().startswith('"') for line in text.splitlines())


def test_benchmark_selfcheck_prints_the_table_and_no_json(tree, tito):
    proc = tito(tree, "benchmark", "selfcheck", "--quick")
    assert proc.returncode in (0, 1), proc.stderr          # 1 only when a figure misses its target
    lines = proc.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.split() == ["check", "measured", "target", "ok"])
    summary = [line for line in lines if re.match(r"\d+/\d+ checks passed in [\d.]+ s \(quick run, seed 0\)", line)]
    assert len(summary) == 1 and lines.index(summary[0]) > header
    assert proc.returncode == (0 if summary[0].split("/")[0] == summary[0].split("/")[1].split()[0] else 1)
    assert _no_json(proc.stdout), proc.stdout
    assert len(lines) < 80 and "add --json FILE" in lines[-1]


def test_benchmark_selfcheck_json_goes_to_the_file_only(tree, tito, tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    target = folder / "selfcheck.json"
    proc = tito(tree, "benchmark", "selfcheck", "--quick", "--json", str(target))
    assert proc.returncode in (0, 1), proc.stderr
    doc = json.loads(target.read_text())
    assert doc["rows"] and all({"check", "measured", "target", "passed"} <= set(row) for row in doc["rows"])
    assert proc.returncode == (0 if doc["passed"] else 1) and f"wrote {target}" in proc.stdout
    assert _no_json(proc.stdout) and "check  " in proc.stdout
    for row in doc["rows"]:                                 # the table shows the rows the file holds
        assert row["check"] in proc.stdout
    assert [p.name for p in folder.iterdir()] == ["selfcheck.json"]        # atomic: no temporary file left
    before = target.read_bytes()
    proc = tito(tree, "benchmark", "selfcheck", "--quick", "--json", str(target))
    assert proc.returncode == 2 and "exists; nothing was written" in proc.stderr and "--overwrite" in proc.stderr
    assert target.read_bytes() == before and proc.stdout == ""             # refused before running anything
    missing = tmp_path / "no_such_folder" / "selfcheck.json"
    proc = tito(tree, "benchmark", "selfcheck", "--quick", "--json", str(missing))
    assert proc.returncode == 2 and f"the folder {missing.parent} does not exist" in proc.stderr
    assert proc.stderr.startswith("tito: error:") and len(proc.stderr.strip().splitlines()) == 1
    proc = tito(tree, "benchmark", "selfcheck", "--quick", "--json", str(folder))
    assert proc.returncode == 2 and "is a folder" in proc.stderr


def _same_environment_as_shipped(reference):
    """fingerprint_differences of this process (the tito child inherits its environment)."""
    from tinytorch.benchmarking import tasks
    from tinytorch.models import zoo

    return not zoo.fingerprint_differences(tasks.read_manifest()[reference]["environment"])


QUALITY_LINE = (r"test accuracy: retrained 0\.\d{4} \[0\.\d{4}, [01]\.\d{4}\] \(n=100\); shipped 0\.\d{4} "
                r"\[0\.\d{4}, [01]\.\d{4}\] \(n=100\); difference [+-]0\.\d{4}, agrees \(tolerance 0\.02, "
                r"95% intervals overlap\)")


def test_train_reference_compares_with_the_shipped_weights(tree, tito):
    out = tito(tree, "benchmark", "train-reference", "visual_wake_words", check=0).stdout
    assert re.search(r"trained vww_cnn \(seed 0\): sha256 [0-9a-f]{64}", out)
    assert re.search(r"test accuracy 0\.\d{4} \[.*\] \(n=100\) \(Wilson score 95%\), target 0\.8: meets", out)
    identical = "identical to the shipped weights: yes" in out
    assert identical or "identical to the shipped weights: no" in out
    if _same_environment_as_shipped("vww_cnn"):
        assert identical, out
    elif not identical:
        assert "the bytes differ because this machine's environment differs" in out
        assert re.search(r"^    (CPU|machine|numpy|BLAS \w+):", out, flags=re.M), out
    assert re.search(QUALITY_LINE, out), out
    proc = tito(tree, "benchmark", "train-reference", "image_classification")
    assert proc.returncode == 2 and "tito zoo train digits_cnn" in proc.stderr


def test_train_reference_on_another_blas_kernel_says_why_the_bytes_differ(tree, tito, monkeypatch):
    """A machine whose BLAS kernel differs (simulated with OPENBLAS_CORETYPE): not identical, the kernel
    named as the reason, and the quality still agrees with the shipped weights."""
    from tinytorch.benchmarking import tasks
    from tinytorch.models import zoo

    if zoo.environment_fingerprint()["blas"]["library"] != "openblas":
        pytest.skip("numpy does not use OpenBLAS here: OPENBLAS_CORETYPE cannot change its kernel")
    shipped_kernel = tasks.read_manifest()["vww_cnn"]["environment"]["blas"]["kernel"]
    if shipped_kernel == "Katmai":
        pytest.skip("the shipped weights were trained with the Katmai kernel that OPENBLAS_CORETYPE=Prescott forces")
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Prescott")
    out = tito(tree, "benchmark", "train-reference", "visual_wake_words", check=0).stdout
    assert "identical to the shipped weights: no" in out
    assert re.search(rf"^    BLAS kernel: \w+ here, {shipped_kernel} in the manifest$", out, flags=re.M), out
    assert re.search(QUALITY_LINE, out), out
