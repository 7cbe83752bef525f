"""`tito benchmark run | tinymlperf | selfcheck` through a subprocess, on a copy of the tree."""
import json


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


def test_benchmark_selfcheck_quick_writes_json(tree, tito, tmp_path):
    target = tmp_path / "selfcheck.json"
    proc = tito(tree, "benchmark", "selfcheck", "--quick", "--json", str(target))
    assert proc.returncode in (0, 1), proc.stderr          # 1 only when a figure misses its target
    doc = json.loads(target.read_text())
    assert doc["rows"] and all({"check", "measured", "target", "passed"} <= set(row) for row in doc["rows"])
    assert proc.returncode == (0 if doc["passed"] else 1) and "wrote" in proc.stdout
    proc = tito(tree, "benchmark", "selfcheck", "--quick", "--json", str(target))
    assert proc.returncode == 1 and "overwrite" in proc.stderr


def test_train_reference_reproduces_the_shipped_weights(tree, tito):
    proc = tito(tree, "benchmark", "train-reference", "visual_wake_words", check=0)
    assert "identical to the shipped weights" in proc.stdout and "test accuracy" in proc.stdout
    proc = tito(tree, "benchmark", "train-reference", "image_classification")
    assert proc.returncode == 2 and "tito zoo train digits_cnn" in proc.stderr
