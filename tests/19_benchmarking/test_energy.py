"""Energy counters (MEASUREMENT.md rule 15) on a FAKE powercap tree and a fake clock: results are
checked exactly against energies computed by hand; the unavailable paths give reasons, never numbers."""
import json
import os
import sys
import types

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinytorch.benchmarking import energy as en
from tinytorch.benchmarking.energy import (EnergyUnavailable, NvmlDevice, RaplDomain, counter_delta,
                                           counter_update_period, estimate_energy, find_nvml_devices,
                                           find_rapl_domains, measure_energy, nvml_energy_available,
                                           read_energy_uj)

MS = 1_000_000            # nanoseconds
BIG_RANGE = 262143328850  # a real package's max_energy_range_uj


class FakeMachine:
    """A fake clock, a fake powercap tree and a fake GPU.

    Idle power accrues with time (package-0 2 W, package-1 1 W, GPU 50 W, i.e. uJ per ms = mW);
    each fn() call lasts 1 ms and adds per_call uJ (or per_call[window], given calls_per_window) to
    package-0 and gpu_per_call uJ to the GPU. The counter files show the energy at the last tick
    (counters update once per tick), modulo each zone's max_energy_range_uj, like RAPL.
    """

    def __init__(self, root, per_call=0, calls_per_window=None, pkg0_range=BIG_RANGE, pkg0_offset=0,
                 tick_ns=MS, rates=(2000, 1000), gpu_rate=50_000, gpu_per_call=0):
        self.root, self.t, self.tick_ns, self.calls = root, 0, tick_ns, 0
        self.per_call, self.calls_per_window, self.gpu_per_call = per_call, calls_per_window, gpu_per_call
        self.rates, self.offsets, self.ranges = rates, (pkg0_offset, 0), (pkg0_range, BIG_RANGE)
        self.gpu_rate, self.fn_uj, self.fn_gpu_uj = gpu_rate, [], []
        self.shown_tick = None
        for n, name in enumerate(("package-0", "package-1")):
            self._zone(root / f"intel-rapl:{n}", name, self.ranges[n])
        self._zone(root / "intel-rapl:0" / "intel-rapl:0:0", "core", BIG_RANGE)   # a subzone of package-0
        os.symlink(root / "intel-rapl:0" / "intel-rapl:0:0", root / "intel-rapl:0:0")  # as sysfs lists it
        self._zone(root / "intel-rapl-mmio:0", "package-0", BIG_RANGE)   # the same package through MMIO
        self.write()

    @staticmethod
    def _zone(path, name, max_range):
        path.mkdir(parents=True)
        (path / "name").write_text(name + "\n")
        (path / "max_energy_range_uj").write_text(f"{max_range}\n")

    def true_uj(self, n, t):
        """Energy of package n (or the GPU, n = "gpu") at time t in microjoules, unwrapped."""
        if n == "gpu":
            return self.gpu_rate * t // MS + sum(uj for when, uj in self.fn_gpu_uj if when <= t)
        extra = sum(uj for when, uj in self.fn_uj if when <= t) if n == 0 else 0
        return self.offsets[n] + self.rates[n] * t // MS + extra

    def write(self):
        """Show the energy as of the last tick in every counter file."""
        tick = self.t // self.tick_ns * self.tick_ns
        if tick == self.shown_tick:
            return
        self.shown_tick = tick
        for n in (0, 1):
            (self.root / f"intel-rapl:{n}" / "energy_uj").write_text(f"{self.true_uj(n, tick) % self.ranges[n]}\n")
        core = self.root / "intel-rapl:0" / "intel-rapl:0:0" / "energy_uj"
        core.write_text(f"{self.true_uj(0, tick) // 2}\n")
        (self.root / "intel-rapl-mmio:0" / "energy_uj").write_text(f"{self.true_uj(0, tick) % BIG_RANGE}\n")
        self.gpu_mj = self.true_uj("gpu", tick) // 1000

    def clock(self):
        return self.t

    def sleep(self, seconds):
        self.t += round(seconds * 1e9)
        self.write()

    def fn(self):
        self.t += MS
        uj = self.per_call if self.calls_per_window is None else self.per_call[self.calls // self.calls_per_window]
        self.fn_uj.append((self.t, uj))
        self.fn_gpu_uj.append((self.t, self.gpu_per_call))
        self.calls += 1
        self.write()

    def measure(self, **options):
        return measure_energy(self.fn, root=self.root, clock=self.clock, sleep=self.sleep, **options)


def fake_pynvml(machine, supported=(True,)):
    """A stand-in pynvml module whose GPU 0 reads machine's GPU energy; GPUs with supported False raise."""
    nvml = types.ModuleType("pynvml")

    class NVMLError(Exception):
        pass

    def energy(handle):
        if not supported[handle]:
            raise NVMLError("Not Supported")
        return machine.gpu_mj

    nvml.NVMLError = NVMLError
    nvml.open = 0
    nvml.nvmlInit = lambda: setattr(nvml, "open", nvml.open + 1)
    nvml.nvmlShutdown = lambda: setattr(nvml, "open", nvml.open - 1)
    nvml.nvmlDeviceGetCount = lambda: len(supported)
    nvml.nvmlDeviceGetHandleByIndex = lambda index: index
    nvml.nvmlDeviceGetName = lambda handle: b"Fake GPU" if handle == 0 else "Old GPU"
    nvml.nvmlDeviceGetTotalEnergyConsumption = energy
    return nvml


@pytest.fixture
def no_pynvml(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)   # `import pynvml` raises ImportError


# ------------------------------------------------------------------ domains and counters


def test_find_rapl_domains_returns_packages_only(tmp_path):
    FakeMachine(tmp_path)
    domains = find_rapl_domains(tmp_path)
    assert [(d.name, d.key, d.max_range_uj) for d in domains] == [
        ("package-0", "intel-rapl:0", BIG_RANGE), ("package-1", "intel-rapl:1", BIG_RANGE)]
    assert "package-0" in repr(domains[0]) and "262143.3 J" in repr(domains[0])
    assert read_energy_uj(domains) == {"intel-rapl:0": 0, "intel-rapl:1": 0}
    assert read_energy_uj(domains[0]) == 0


def test_psys_only_tree_is_unavailable(tmp_path):
    FakeMachine._zone(tmp_path / "intel-rapl:0", "psys", BIG_RANGE)
    with pytest.raises(EnergyUnavailable, match=r"no RAPL package zone \(found: intel-rapl:0 \(psys\)\)"):
        find_rapl_domains(tmp_path)


def test_missing_tree_and_garbage_range(tmp_path):
    with pytest.raises(EnergyUnavailable, match="does not exist.*estimate_energy"):
        find_rapl_domains(tmp_path / "nope")
    FakeMachine._zone(tmp_path / "intel-rapl:0", "package-0", BIG_RANGE)
    (tmp_path / "intel-rapl:0" / "max_energy_range_uj").write_text("lots\n")
    with pytest.raises(EnergyUnavailable, match="holds 'lots\\\\n', not a non-negative integer"):
        find_rapl_domains(tmp_path)


def test_counter_delta_plain_and_wrapped():
    assert counter_delta(100, 350, 1000) == 250
    assert counter_delta(900, 50, 1000) == 150        # 900 -> 1000 wraps to 0 -> 50
    assert counter_delta(7, 7, 1000) == 0
    assert counter_delta(0, 1000, 1000) == 1000


@settings(max_examples=300, deadline=None, database=None)
@given(st.integers(1, 2**40), st.data())
def test_counter_delta_recovers_any_single_wrap(max_range, data):
    before = data.draw(st.integers(0, max_range - 1))
    used = data.draw(st.integers(0, max_range - 1))          # less than one full turn of the counter
    assert counter_delta(before, (before + used) % max_range, max_range) == used


@pytest.mark.parametrize("before, after, max_range, error", [
    (-1, 5, 10, ValueError), (5, 11, 10, ValueError), (5, 6, 0, ValueError),
    (1.5, 2, 10, TypeError), (True, 2, 10, TypeError), ("1", 2, 10, TypeError)])
def test_counter_delta_rejects_bad_readings(before, after, max_range, error):
    with pytest.raises(error):
        counter_delta(before, after, max_range)


@pytest.mark.parametrize("tick_ns, period_s", [(MS, 0.001), (2_500_000, 0.0025)])
def test_counter_update_period_is_measured(tmp_path, tick_ns, period_s):
    machine = FakeMachine(tmp_path, tick_ns=tick_ns)
    period = counter_update_period(find_rapl_domains(tmp_path), clock=machine.clock, sleep=machine.sleep)
    assert period == pytest.approx(period_s, rel=1e-12)


def test_stuck_counter_is_unavailable(tmp_path):
    machine = FakeMachine(tmp_path, rates=(0, 0))
    domains = find_rapl_domains(tmp_path)
    with pytest.raises(EnergyUnavailable, match="stuck"):
        counter_update_period(domains, max_wait_s=0.01, clock=machine.clock, sleep=machine.sleep)
    result = machine.measure(max_wait_s=0.01, backend="rapl")
    assert result["available"] is False and "stuck" in result["reason"] and result["method"] is None


# ------------------------------------------------------------------ measure_energy, exact


def test_measure_energy_exact_with_wrap_and_idle_subtraction(tmp_path, no_pynvml):
    per_call = (5000, 7000, 4000, 6000, 8000)    # uJ per call in windows 0..4
    # package-0 crosses its range inside active window 0 (fake time 19..31 ms)
    machine = FakeMachine(tmp_path, per_call=per_call, calls_per_window=11, pkg0_range=10**9,
                          pkg0_offset=10**9 - 50_000)
    result = machine.measure()
    assert result["available"] is True and result["estimate"] is False and result["backend"] == "rapl"
    assert [d["key"] for d in result["domains"]] == ["intel-rapl:0", "intel-rapl:1"]   # no core, no mmio
    assert result["counter_update_period_s"] == pytest.approx(0.001, rel=1e-12)
    assert result["poll_gap_s"] == pytest.approx(50e-6, rel=1e-12)
    assert result["window_s"] == pytest.approx(0.0105, rel=1e-12)    # 10 x (1 ms period + 0.05 ms poll gap)
    assert result["calls_per_window"] == [11] * 5                     # 1 ms calls until 10.5 ms have passed
    # idle windows: 10.5 ms sleep + 0.5 ms to the next update, 3000 uJ per ms -> 3 W
    assert [w["elapsed_s"] for w in result["raw"]["idle"]] == pytest.approx([0.011] * 5, rel=1e-12)
    assert result["idle_watts"] == pytest.approx(3.0, rel=1e-12)
    active = result["raw"]["active"]
    assert active[0]["wrapped"] == ["intel-rapl:0"] and all(not w["wrapped"] for w in active[1:])
    for window, uj in zip(active, per_call):
        # 11 calls of 1 ms + 1 ms to the next update: 12 ms x 3 W idle + 11 calls x uj
        assert window["energy_j"] == pytest.approx((36_000 + 11 * uj) / 1e6, rel=1e-12)
        assert window["elapsed_s"] == pytest.approx(0.012, rel=1e-12)
        assert window["joules_per_call"] == pytest.approx(uj / 1e6, rel=1e-9)
        assert window["active_watts"] == pytest.approx(uj / 1e3, rel=1e-9)   # uj per 1 ms call
        assert window["gross_watts"] == pytest.approx((36_000 + 11 * uj) / 12 / 1e3, rel=1e-12)
    assert result["joules_per_call"] == pytest.approx(0.006, rel=1e-9)
    assert result["joules_per_call_interval"] == pytest.approx([0.004, 0.008], rel=1e-9)
    assert result["active_watts"] == pytest.approx(6.0, rel=1e-9)
    assert result["active_watts_interval"] == pytest.approx([4.0, 8.0], rel=1e-9)
    assert result["interval_confidence"] == 1 - 2 / 2**5 == 0.9375
    assert "93.75% confidence (with 5 windows that is their min..max range)" in result["method"]
    assert any("CV 26%" in w for w in result["warnings"])      # std(4..8 mJ) / 6 mJ
    assert any("NVML" in note for note in result["not_used"])
    json.dumps(result, allow_nan=False)                        # plain, finite values: ready for a results file


def test_longer_windows_and_idle_s(tmp_path):
    machine = FakeMachine(tmp_path, per_call=2000)
    result = machine.measure(windows=7, min_window_s=0.015, idle_s=0.02, backend="rapl")
    assert result["calls_per_window"] == [15] * 7
    assert result["idle_window_s"] == 0.02
    assert [w["elapsed_s"] for w in result["raw"]["idle"]] == pytest.approx([0.021] * 7, rel=1e-12)
    assert result["idle_watts"] == pytest.approx(3.0, rel=1e-12)
    assert result["joules_per_call"] == pytest.approx(0.002, rel=1e-9)
    assert result["interval_confidence"] == 1 - 2 / 2**7
    assert result["warnings"] == []


def test_no_energy_above_idle_is_warned_not_hidden(tmp_path):
    result = FakeMachine(tmp_path, per_call=0).measure(backend="rapl")
    assert result["joules_per_call"] == pytest.approx(0.0, abs=1e-15)
    assert "in 5 of 5 windows the energy above idle was below 0.003 J" in result["warnings"][0]


# ------------------------------------------------------------------ NVML through a fake pynvml


def test_nvml_path_with_a_fake_pynvml(tmp_path, monkeypatch):
    machine = FakeMachine(tmp_path, per_call=1000, gpu_per_call=30_000)
    nvml = fake_pynvml(machine, supported=(True, False))
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    assert nvml_energy_available() == {"available": True, "devices": ["GPU 0 Fake GPU"]}
    gpu_only = measure_energy(machine.fn, root=tmp_path / "none", clock=machine.clock, sleep=machine.sleep)
    assert gpu_only["backend"] == "nvml" and gpu_only["idle_watts"] == pytest.approx(50.0, rel=1e-12)
    assert gpu_only["joules_per_call"] == pytest.approx(0.030, rel=1e-9)
    assert any("CPU energy of fn is not included" in w for w in gpu_only["warnings"])
    both = machine.measure(backend="auto")
    assert both["backend"] == "nvml+rapl" and [d["key"] for d in both["domains"]][-1] == "nvml:0"
    assert both["idle_watts"] == pytest.approx(53.0, rel=1e-12)
    assert both["joules_per_call"] == pytest.approx(0.031, rel=1e-9)
    assert nvml.open == 0                                   # every nvmlInit was shut down
    assert "Fake GPU" in repr(find_nvml_devices()[0])
    nvml.nvmlShutdown()


def test_nvml_without_an_energy_counter(tmp_path, monkeypatch):
    nvml = fake_pynvml(FakeMachine(tmp_path), supported=(False,))
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    state = nvml_energy_available()
    assert state["available"] is False and "Volta or newer" in state["reason"] and "Not Supported" in state["reason"]
    assert nvml.open == 0


def test_nvml_unavailable_without_pynvml(tmp_path, no_pynvml):
    state = nvml_energy_available()
    assert state == {"available": False, "reason": state["reason"]} and "pip install nvidia-ml-py" in state["reason"]
    result = measure_energy(lambda: None, backend="nvml", root=tmp_path)
    assert result == {"available": False, "reason": "NVML: " + state["reason"], "method": None}


# ------------------------------------------------------------------ unavailable: reasons, never numbers


def test_missing_tree_is_unavailable_with_both_reasons(tmp_path, no_pynvml):
    result = measure_energy(lambda: None, root=tmp_path / "no-powercap")
    assert set(result) == {"available", "reason", "method"} and result["available"] is False
    assert result["method"] is None
    assert "RAPL:" in result["reason"] and "no-powercap does not exist" in result["reason"]
    assert "NVML:" in result["reason"] and "estimate_energy" in result["reason"]


def test_permission_error_is_unavailable(tmp_path, monkeypatch):
    machine = FakeMachine(tmp_path)
    real = en._read_sysfs

    def denied(path):
        if str(path).endswith("energy_uj"):
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(en, "_read_sysfs", denied)
    with pytest.raises(EnergyUnavailable, match="permission denied reading .*intel-rapl:0/energy_uj.*root"):
        read_energy_uj(find_rapl_domains(tmp_path))
    result = machine.measure(backend="rapl")
    assert result["available"] is False and "CVE-2020-8694" in result["reason"] and result["method"] is None


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root reads mode-000 files anyway")
def test_unreadable_file_is_unavailable(tmp_path):
    machine = FakeMachine(tmp_path)
    (tmp_path / "intel-rapl:0" / "energy_uj").chmod(0)
    result = machine.measure(backend="rapl")
    assert result["available"] is False and "permission denied" in result["reason"]


def test_garbage_counter_is_unavailable(tmp_path):
    machine = FakeMachine(tmp_path)
    (tmp_path / "intel-rapl:1" / "energy_uj").write_text("banana\n")
    machine.write = lambda: None                       # keep the garbage in place
    result = machine.measure(backend="rapl")
    assert result["available"] is False and "intel-rapl:1/energy_uj holds 'banana\\n'" in result["reason"]


# ------------------------------------------------------------------ arguments and the estimate


@pytest.mark.parametrize("options, error, words", [
    ({"windows": 4}, ValueError, "windows must be an int >= 5"),
    ({"windows": 5.0}, ValueError, "windows must be an int"),
    ({"min_window_s": -1}, ValueError, "min_window_s must be a positive"),
    ({"idle_s": float("nan")}, ValueError, "idle_s must be a positive"),
    ({"backend": "gpu"}, ValueError, "backend must be one of"),
])
def test_measure_energy_rejects_bad_arguments(options, error, words):
    with pytest.raises(error, match=words):
        measure_energy(lambda: None, **options)


def test_measure_energy_needs_a_callable():
    with pytest.raises(TypeError, match="fn must be a callable"):
        measure_energy(42)


def test_read_energy_uj_rejects_other_objects(tmp_path):
    FakeMachine(tmp_path)
    with pytest.raises(ValueError, match="RaplDomain/NvmlDevice"):
        read_energy_uj(["intel-rapl:0"])
    domain = find_rapl_domains(tmp_path)[0]
    with pytest.raises(ValueError, match="listed twice"):
        read_energy_uj([domain, domain])


def test_estimate_energy_is_labelled():
    result = estimate_energy(0.002, 15, "vendor TDP of the CPU")
    assert result["estimate"] is True and result["available"] is True
    assert result["formula"] == "energy_per_call_J = watts x latency_s"
    assert result["assumed_watts"] == 15.0 and result["source"] == "vendor TDP of the CPU"
    assert result["joules_per_call"] == pytest.approx(0.03, rel=1e-15)
    assert "estimate, not a measurement" in result["method"]


@pytest.mark.parametrize("latency, watts, source", [
    (0.001, 0, "TDP"), (0.001, float("nan"), "TDP"), (0.001, None, "TDP"), (0, 10, "TDP"), (0.001, 10, " ")])
def test_estimate_energy_rejects_bad_input(latency, watts, source):
    with pytest.raises(ValueError):
        estimate_energy(latency, watts, source)


def test_reprs(tmp_path):
    FakeMachine(tmp_path)
    assert repr(find_rapl_domains(tmp_path)[1]).startswith("RaplDomain('package-1', ")
    assert repr(NvmlDevice(0, "X", None, None)) == "NvmlDevice(0, 'X', total energy counter in mJ)"
    assert isinstance(find_rapl_domains(tmp_path)[0], RaplDomain)
