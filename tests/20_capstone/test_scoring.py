"""Tests of tinytorch.capstone.scoring against hand-computed values and independent oracles.

Oracles: scipy.stats (binomtest's Wilson interval, binom for order-statistic ranks, mannwhitneyu),
brute-force pair counts, and hand arithmetic (ratios, products, cube roots). Latency samples are built
so that sub = base / 2 exactly: then every paired bootstrap ratio is exactly 2 and the interval is [2, 2].
"""
import json
import math

import numpy as np
import pytest
import scipy.stats as st

from tinytorch.benchmarking.benchmark import OlympicEvent
from tinytorch.benchmarking.stats import bootstrap_ratio_ci
from tinytorch.capstone import scoring
from tinytorch.capstone.events import DEFAULT_RULES, rules_for
from tinytorch.capstone.scoring import (accuracy_delta, check_constraints, compression, event_score, medals, rank,
                                        score_all, speedup)

BASE_MS = np.arange(1.0, 26.0)                     # 25 samples, median 13
N = 100


def wilson(k, n, confidence=0.95):
    """Oracle: scipy's Wilson score interval (no continuity correction)."""
    ci = st.binomtest(k, n).proportion_ci(confidence_level=confidence, method="wilson")
    return max(0.0, float(ci.low)), min(1.0, float(ci.high))


def correct(k, n=N, first=True):
    """0/1 array with k ones (at the start, or at the end when first is False)."""
    out = np.zeros(n, dtype=int)
    if first:
        out[:k] = 1
    else:
        out[n - k:] = 1
    return out


def measurement(k=90, latency=BASE_MS, parameter_bytes=4000, serialized_bytes=5000, **extra):
    return {"correct": correct(k), "latency_ms": np.asarray(latency, dtype=float),
            "parameter_bytes": parameter_bytes, "serialized_bytes": serialized_bytes, **extra}


BASELINE = measurement(k=90, latency=BASE_MS, parameter_bytes=4000, serialized_bytes=5000)
HALF = measurement(k=90, latency=BASE_MS / 2, parameter_bytes=1000, serialized_bytes=2500)   # S = 2, C = 4


# ---------------------------------------------------------------- speedup, compression, accuracy

def test_speedup_is_the_ratio_of_medians_with_an_exact_paired_interval():
    result = speedup(BASE_MS, BASE_MS / 2)
    assert result["value"] == 2.0 and (result["low"], result["high"]) == (2.0, 2.0)
    assert result["median_base_ms"] == 13.0 and result["median_sub_ms"] == 6.5 and result["paired"] is True
    assert result["p_value"] == pytest.approx(st.mannwhitneyu(BASE_MS, BASE_MS / 2).pvalue)
    pairs = [(s < b) + 0.5 * (s == b) for s in BASE_MS / 2 for b in BASE_MS]     # brute force
    assert result["prob_sub_faster"] == pytest.approx(np.mean(pairs))
    assert result["verdict"] == "submission faster" and result["significant"] is True


def test_speedup_interval_is_the_seeded_bootstrap_of_module_19():
    rng = np.random.default_rng(7)
    base, sub = rng.lognormal(0.0, 0.2, 40) + 2, rng.lognormal(0.0, 0.2, 31) + 1
    result = speedup(base, sub, seed=3)
    assert result["value"] == pytest.approx(np.median(base) / np.median(sub))
    assert (result["value"], result["low"], result["high"]) == bootstrap_ratio_ci(base, sub, seed=3, paired=False)
    assert result["paired"] is False and result["low"] <= result["value"] <= result["high"]
    assert speedup(base, sub, seed=3) == result                                   # deterministic


def test_speedup_of_identical_samples_is_one_and_not_significant():
    result = speedup(BASE_MS, BASE_MS)
    assert (result["value"], result["low"], result["high"], result["p_value"]) == (1.0, 1.0, 1.0, 1.0)
    assert result["verdict"] == "no significant difference"


def test_speedup_rejects_bad_samples():
    with pytest.raises(ValueError, match="positive durations"):
        speedup([1.0, 0.0, 2.0], [1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="non-finite"):
        speedup([1.0, math.nan], [1.0, 1.0])


def test_compression_is_exact_for_parameter_and_serialized_bytes():
    result = compression(BASELINE, HALF)
    assert (result["value"], result["low"], result["high"]) == (4.0, 4.0, 4.0)
    assert result["parameter_ratio"] == 4000 / 1000 and result["serialized_ratio"] == 5000 / 2500
    assert result["exact"] is True and "no interval" in result["method"]
    assert compression({"parameter_bytes": 3, "serialized_bytes": 7},
                       {"parameter_bytes": np.int64(4), "serialized_bytes": 7})["value"] == 0.75


@pytest.mark.parametrize("sub, message", [
    ({"parameter_bytes": 0, "serialized_bytes": 1}, r"sub_bytes\['parameter_bytes'\] must be a byte count.*got 0"),
    ({"parameter_bytes": 1.5, "serialized_bytes": 1}, "must be a byte count"),
    ({"parameter_bytes": 10}, "sub_bytes lacks 'serialized_bytes'"),
    (1000, "sub_bytes must be a dict")])
def test_compression_rejects_bad_byte_counts(sub, message):
    with pytest.raises(ValueError, match=message):
        compression(BASELINE, sub)


def test_accuracy_delta_wilson_interval_and_mcnemar():
    sub, base = correct(8, 10), correct(9, 10)           # sub wrong on example 8 only where base is right
    result = accuracy_delta(sub, base)
    assert (result["value"], result["baseline_accuracy"], result["delta"]) == (0.8, 0.9, pytest.approx(-0.1))
    assert (result["low"], result["high"]) == pytest.approx(wilson(8, 10))
    assert (result["baseline_low"], result["baseline_high"]) == pytest.approx(wilson(9, 10))
    assert (result["only_sub_correct"], result["only_base_correct"]) == (0, 1)
    assert result["p_value"] == 1.0                      # one discordant pair: 2 * 0.5 ** 1 capped at 1
    five_apart = accuracy_delta(correct(0, 10), correct(5, 10))
    assert five_apart["p_value"] == pytest.approx(2 * 0.5 ** 5)      # exact binomial on 5 discordant pairs
    assert five_apart["low"] == 0.0 and five_apart["value"] == 0.0
    booleans = accuracy_delta(correct(8, 10).astype(bool), base)
    assert booleans["correct"] == 8


def test_accuracy_delta_rejects_mismatched_or_non_binary_outcomes():
    with pytest.raises(ValueError, match="correct_sub has 9 examples but correct_base 10"):
        accuracy_delta(correct(5, 9), correct(5, 10))
    with pytest.raises(ValueError, match=r"must hold 0/1.*got e.g. \[2.0\]"):
        accuracy_delta([1, 0, 2], [1, 0, 1])


# ---------------------------------------------------------------- constraints at their boundaries

def test_accuracy_constraint_is_met_only_by_the_wilson_lower_bound():
    sub = measurement(k=90)                               # 90/100: Wilson [0.8256, 0.9448]
    low, high = wilson(90, 100)
    at_bound = check_constraints(sub, rules_for("latency_sprint", {"min_accuracy": low}))
    assert len(at_bound) == 1 and at_bound[0]["constraint"] == "min_accuracy"
    assert at_bound[0]["met"] is True and at_bound[0]["conclusive"] is True and at_bound[0]["value"] == 0.9
    above = check_constraints(sub, rules_for("latency_sprint", {"min_accuracy": low + 1e-9}))[0]
    assert above["met"] is False and above["conclusive"] is False and "not met conclusively" in above["reason"]
    assert above["interval"] == pytest.approx([low, high])
    default = check_constraints(sub, DEFAULT_RULES[OlympicEvent.LATENCY_SPRINT])[0]
    assert default["met"] is False and default["conclusive"] is False        # 0.90 observed, but 0.8256 < 0.85
    failed = check_constraints(sub, rules_for("latency_sprint", {"min_accuracy": high + 1e-9}))[0]
    assert failed["met"] is False and failed["conclusive"] is True and "conclusively below" in failed["reason"]


def test_latency_constraint_uses_the_upper_bound_of_the_median_interval():
    samples = np.arange(1.0, 21.0)                        # n = 20, sorted 1..20
    # Oracle: the order-statistic ranks by scipy's binomial, equal tails of at most 2.5% each.
    ranks = np.arange(1, 21)
    lower = ranks[st.binom.cdf(ranks - 1, 20, 0.5) <= 0.025].max()
    upper = ranks[st.binom.sf(ranks - 1, 20, 0.5) <= 0.025].min()
    assert (lower, upper) == (6, 15)
    sub = measurement(latency=samples)

    def latency(bound):
        return check_constraints(sub, rules_for("accuracy_contest", {"max_latency_ms": bound,
                                                                    "max_memory_bytes": None}))[0]
    assert latency(15.0)["met"] is False and latency(15.0)["conclusive"] is False   # 15 < 15 fails
    assert latency(15.0)["interval"] == [6.0, 15.0] and latency(15.0)["value"] == 10.5
    assert latency(15.000001)["met"] is True and latency(15.000001)["conclusive"] is True
    assert latency(6.0)["met"] is False and latency(6.0)["conclusive"] is True       # lower bound >= limit
    assert "conclusively too slow" in latency(6.0)["reason"]
    assert latency(6.000001)["conclusive"] is False


def test_latency_constraint_with_too_few_calls_is_not_conclusive():
    few = measurement(latency=[1.0, 1.0, 1.0, 1.0, 1.0])   # n = 5: (min, max) has only 93.75% confidence
    result = check_constraints(few, DEFAULT_RULES[OlympicEvent.ACCURACY_CONTEST])[0]
    assert result["met"] is False and result["conclusive"] is False
    assert "93.8% confidence" in result["reason"] and "at least 6" in result["reason"]
    six = check_constraints(measurement(latency=[1.0] * 6), DEFAULT_RULES[OlympicEvent.ACCURACY_CONTEST])[0]
    assert six["met"] is True                              # n = 6 reaches 96.9%


def test_memory_constraint_is_exact_and_strict():
    rules = rules_for("accuracy_contest", {"max_latency_ms": None})
    at = check_constraints(measurement(parameter_bytes=10_000_000), rules)[0]
    below = check_constraints(measurement(parameter_bytes=9_999_999), rules)[0]
    assert (at["met"], at["conclusive"], below["met"], below["conclusive"]) == (False, True, True, True)
    assert at["reason"] == "parameter_bytes 10,000,000 >= 10,000,000 (exact): too large"


def test_check_constraints_rejects_bad_measurements():
    with pytest.raises(ValueError, match=r"measurement lacks \['latency_ms'\]"):
        check_constraints({"correct": [1], "parameter_bytes": 1, "serialized_bytes": 1},
                          DEFAULT_RULES[OlympicEvent.LATENCY_SPRINT])
    with pytest.raises(ValueError, match="rules must be an EventRules"):
        check_constraints(BASELINE, "latency_sprint")
    with pytest.raises(ValueError, match=r"latency_ms'\] must be positive"):
        check_constraints(measurement(latency=[1.0, -1.0]), DEFAULT_RULES[OlympicEvent.LATENCY_SPRINT])


# ---------------------------------------------------------------- event scores

def test_each_event_formula_against_hand_values():
    sub = measurement(k=90, latency=BASE_MS / 2, parameter_bytes=1000, serialized_bytes=2500)
    base = measurement(k=90, latency=BASE_MS, parameter_bytes=4000, serialized_bytes=5000)
    expected = {"latency_sprint": (2.0, 2.0, 2.0), "memory_challenge": (4.0, 4.0, 4.0),
                "extreme_push": (8.0, 8.0, 8.0)}
    for name, values in expected.items():
        result = event_score(name, sub, base)
        assert (result["score"], result["low"], result["high"]) == values
        assert result["formula"] == DEFAULT_RULES[OlympicEvent(name)].formula and result["higher_is_better"]
    assert event_score("memory_challenge", sub, base)["tiebreak"] == 2.0         # 5000 / 2500
    contest = event_score("accuracy_contest", sub, base)
    assert contest["score"] == 0.9 and (contest["low"], contest["high"]) == pytest.approx(wilson(90, 100))
    # All-Around: (S * C * A / A_base) ** (1/3) = (2 * 4 * 1) ** (1/3) = 2; accuracy bounds at 97.5%.
    around = event_score("all_around", sub, base)
    low97, high97 = wilson(90, 100, 0.975)
    assert around["score"] == pytest.approx(2.0)
    assert around["low"] == pytest.approx((2 * 4 * low97 / 0.9) ** (1 / 3))
    assert around["high"] == pytest.approx((2 * 4 * high97 / 0.9) ** (1 / 3))
    assert around["components"]["joint_intervals"]["confidence"] == 0.975


def test_extreme_push_interval_is_the_speedup_interval_times_compression():
    rng = np.random.default_rng(11)
    base = measurement(latency=rng.lognormal(0, 0.3, 30) + 3, parameter_bytes=9000)
    sub = measurement(latency=rng.lognormal(0, 0.3, 30) + 1, parameter_bytes=2000)
    s = speedup(base["latency_ms"], sub["latency_ms"], seed=5)
    result = event_score("extreme_push", sub, base, seed=5)
    assert result["score"] == pytest.approx(s["value"] * 4.5)
    assert (result["low"], result["high"]) == pytest.approx((s["low"] * 4.5, s["high"] * 4.5))
    assert result["components"]["speedup"] == s


def test_all_around_geometric_mean_with_unequal_accuracy_and_zero():
    sub = measurement(k=45, latency=BASE_MS / 2, parameter_bytes=500)    # S = 2, C = 8, A / A_base = 0.5
    result = event_score("all_around", sub, BASELINE)
    assert result["score"] == pytest.approx((2 * 8 * 0.5) ** (1 / 3))   # = 2
    assert result["eligible"] is False and result["status"] == "constraint not met"
    assert "below the floor" in result["reason"]
    zero = event_score("all_around", measurement(k=0, latency=BASE_MS / 2, parameter_bytes=500), BASELINE)
    assert (zero["score"], zero["low"]) == (0.0, 0.0)
    with pytest.raises(ValueError, match="baseline got no test example right"):
        event_score("all_around", HALF, measurement(k=0))


def test_event_score_eligibility_and_rules_checks():
    good = measurement(k=99, latency=BASE_MS / 2, parameter_bytes=1000)
    result = event_score("latency_sprint", good, BASELINE)
    assert result["eligible"] is True and result["status"] == "ok" and result["reason"] is None
    assert [c["constraint"] for c in result["constraints"]] == ["min_accuracy"]
    with pytest.raises(ValueError, match="rules must be the EventRules of latency_sprint"):
        event_score("latency_sprint", good, BASELINE, DEFAULT_RULES[OlympicEvent.EXTREME_PUSH])
    with pytest.raises(ValueError, match="correct_sub has 50 examples but correct_base 100"):
        event_score("latency_sprint", dict(good, correct=correct(40, 50)), BASELINE)


def test_event_scores_are_json_serialisable():
    for event in OlympicEvent:
        text = json.dumps(event_score(event, HALF, BASELINE), allow_nan=False)
        assert json.loads(text)["event"] == event.value


# ---------------------------------------------------------------- ranks and medals

def entry(id_, score, low, high, eligible=True, **extra):
    return {"id": id_, "score": score, "low": low, "high": high, "eligible": eligible, **extra}


def summary(ranked):
    return [(e["id"], e["rank"], e.get("medal")) for e in ranked]


def test_rank_separate_intervals_get_distinct_ranks():
    ranked = medals(rank([entry("b", 2.0, 1.9, 2.1), entry("a", 3.0, 2.9, 3.1), entry("c", 1.0, 0.9, 1.1),
                          entry("d", 0.5, 0.4, 0.6)], "latency_sprint"))
    assert summary(ranked) == [("a", 1, "gold"), ("b", 2, "silver"), ("c", 3, "bronze"), ("d", 4, None)]


def test_rank_overlap_with_the_leader_shares_and_the_next_rank_skips():
    ranked = medals(rank([entry("a", 3.0, 2.5, 3.5), entry("b", 2.8, 2.4, 3.1), entry("c", 1.0, 0.9, 1.1)],
                         "extreme_push"))
    assert summary(ranked) == [("a", 1, "gold"), ("b", 1, "gold"), ("c", 3, "bronze")]
    assert [e["leader"] for e in ranked] == ["a", "a", "c"]


def test_rank_chains_do_not_extend_a_group():
    # A overlaps B (2.8 <= 2.9), B overlaps C (2.3 <= 2.5), A does not overlap C (2.8 > 2.5):
    # A and B share rank 1; C leads a new group at rank 3; D overlaps C and shares rank 3.
    ranked = medals(rank([entry("C", 2.2, 2.0, 2.5), entry("A", 3.0, 2.8, 3.2), entry("B", 2.6, 2.3, 2.9),
                          entry("D", 2.1, 1.9, 2.3)], "all_around"))
    assert summary(ranked) == [("A", 1, "gold"), ("B", 1, "gold"), ("C", 3, "bronze"), ("D", 3, "bronze")]


def test_rank_compares_with_the_current_leader_only():
    # C's wide interval overlaps A's too, but the current group is B's: C shares rank 2 with B.
    ranked = rank([entry("A", 3.0, 2.9, 3.1), entry("B", 2.0, 1.9, 2.1), entry("C", 1.5, 1.0, 3.5)], "all_around")
    assert summary(ranked) == [("A", 1, None), ("B", 2, None), ("C", 2, None)]
    assert summary(medals(ranked)) == [("A", 1, "gold"), ("B", 2, "silver"), ("C", 2, "silver")]


def test_rank_touching_intervals_overlap_and_exact_ties_share():
    ranked = rank([entry("x", 2.0, 1.5, 2.5), entry("y", 3.0, 2.5, 3.5)], "latency_sprint")
    assert summary(ranked) == [("y", 1, None), ("x", 1, None)]                # closed intervals meet at 2.5
    ties = medals(rank([entry("q", 1.0, 1.0, 1.0), entry("p", 1.0, 1.0, 1.0), entry("r", 0.5, 0.5, 0.5)],
                       "memory_challenge"))
    assert summary(ties) == [("p", 1, "gold"), ("q", 1, "gold"), ("r", 3, "bronze")]   # ties: id order


def test_rank_exact_scores_are_separated_by_the_tiebreak():
    ranked = medals(rank([entry("A", 4.0, 4.0, 4.0, tiebreak=2.0), entry("B", 4.0, 4.0, 4.0, tiebreak=1.5),
                          entry("C", 4.0, 4.0, 4.0, tiebreak=2.0), entry("D", 3.0, 3.0, 3.0, tiebreak=9.0)],
                         "memory_challenge"))
    assert summary(ranked) == [("A", 1, "gold"), ("C", 1, "gold"), ("B", 3, "bronze"), ("D", 4, None)]


def test_rank_lists_ineligible_entries_last_with_their_reason():
    ranked = medals(rank([entry("z", 9.0, 8.0, 10.0, eligible=False, reason="accuracy too low"),
                          entry("m", 1.0, 0.9, 1.1), entry("k", None, None, None, eligible=False, reason="crashed")],
                         "latency_sprint"))
    assert summary(ranked) == [("m", 1, "gold"), ("k", None, None), ("z", None, None)]
    assert [e["reason"] for e in ranked[1:]] == ["crashed", "accuracy too low"]


@pytest.mark.parametrize("ranks, expected", [
    ([1, 2, 3, 4], ["gold", "silver", "bronze", None]), ([1, 1, 3], ["gold", "gold", "bronze"]),
    ([1, 2, 2, 4], ["gold", "silver", "silver", None]), ([1, 1, 1, 4], ["gold", "gold", "gold", None]),
    ([1, None], ["gold", None])])
def test_medals_follow_ranks(ranks, expected):
    assert [e["medal"] for e in medals([{"id": str(i), "rank": r} for i, r in enumerate(ranks)])] == expected


@pytest.mark.parametrize("entries, message", [
    ([entry("a", 1.0, 0.9, 1.1), entry("a", 2.0, 1.9, 2.1)], r"unique, got duplicates \['a'\]"),
    ([entry("a", 1.0, 0.9, 1.1, eligible=False)], "ineligible but gives no 'reason'"),
    ([entry("a", math.nan, 0.9, 1.1)], "'score' must be a finite number, got nan"),
    ([entry("a", 1.0, 1.2, 1.1)], "low 1.2 > high 1.1"),
    ([entry("a", 1.0, 1.0, 1.0, tiebreak=1.0), entry("b", 1.0, 1.0, 1.0)], "give all or none"),
    ([entry("", 1.0, 1.0, 1.0)], "non-empty str 'id'"),
    ([entry("a", 1.0, 1.0, 1.0, eligible=1)], "'eligible' must be True or False")])
def test_rank_rejects_bad_entries(entries, message):
    with pytest.raises(ValueError, match=message):
        rank(entries, "latency_sprint")


def test_medals_needs_ranked_entries():
    with pytest.raises(ValueError, match="medals needs the list that rank"):
        medals([{"id": "a"}])


# ---------------------------------------------------------------- score_all

def test_score_all_ranks_every_event_and_is_json_ready():
    subs = {"baseline": BASELINE, "half": HALF,
            "tiny_but_wrong": measurement(k=50, latency=BASE_MS / 4, parameter_bytes=100)}
    board = score_all(subs, BASELINE, ["latency_sprint", OlympicEvent.MEMORY_CHALLENGE, "ALL_AROUND"])
    assert list(board) == ["latency_sprint", "memory_challenge", "all_around"]
    # Neither baseline nor half clears 0.85 conclusively at 90/100 (Wilson low 0.826): all ineligible.
    assert all(e["rank"] is None for e in board["latency_sprint"])
    around = board["all_around"]                        # floor 0.80: 90/100 passes, 50/100 does not
    assert summary(around) == [("half", 1, "gold"), ("baseline", 2, "silver"), ("tiny_but_wrong", None, None)]
    assert around[0]["result"]["score"] == pytest.approx(2.0) and around[0]["score"] == pytest.approx(2.0)
    assert around[2]["status"] == "constraint not met" and "below the floor" in around[2]["reason"]
    text = json.dumps(board, allow_nan=False)
    assert json.loads(text)["all_around"][0]["medal"] == "gold"
    assert score_all(subs, BASELINE, ["all_around"]) == {"all_around": around}      # deterministic


def test_score_all_uses_per_task_rules():
    lenient = {"latency_sprint": rules_for("latency_sprint", {"min_accuracy": 0.5})}
    board = score_all({"baseline": BASELINE, "half": HALF}, BASELINE, "latency_sprint", rules=lenient)
    assert summary(board["latency_sprint"]) == [("half", 1, "gold"), ("baseline", 2, "silver")]


def test_score_all_rejects_bad_arguments():
    with pytest.raises(ValueError, match="each event once"):
        score_all({"a": HALF}, BASELINE, ["latency_sprint", "LATENCY_SPRINT"])
    with pytest.raises(ValueError, match="non-empty dict"):
        score_all({}, BASELINE, ["latency_sprint"])
    with pytest.raises(ValueError, match="valid events"):
        score_all({"a": HALF}, BASELINE, ["sprint"])
    with pytest.raises(ValueError, match=r"rules\['extreme_push'\] must be the EventRules of extreme_push"):
        score_all({"a": HALF}, BASELINE, ["extreme_push"], rules={"extreme_push": DEFAULT_RULES[OlympicEvent.ALL_AROUND]})


def test_constants():
    assert scoring.JOINT_CONFIDENCE == pytest.approx(0.975) and scoring.MEDALS[3] == "bronze"


def test_session_bootstrap_widens_the_interval_when_processes_differ():
    from tinytorch.capstone.scoring import session_ratio_ci, speedup

    gen = np.random.default_rng(0)
    offsets = [0.85, 1.0, 1.15]             # each fresh pair of processes runs at its own speed ratio
    base = np.concatenate([gen.lognormal(0, 0.02, 30) * 2.0 for _ in offsets])
    sub = np.concatenate([gen.lognormal(0, 0.02, 30) * 2.0 / f for f in offsets])
    labels = np.repeat(np.arange(3), 30)
    plain, grouped = speedup(base, sub), speedup(base, sub, sessions=labels)
    assert plain["value"] == pytest.approx(np.median(base) / np.median(sub))
    assert grouped["value"] == pytest.approx(np.median(base / sub))     # the rounds' own ratios
    assert (grouped["high"] - grouped["low"]) > 3 * (plain["high"] - plain["low"])
    assert grouped["low"] <= 0.9 and grouped["high"] >= 1.1 and "two-level" in grouped["method"]
    assert session_ratio_ci(base, sub, labels, seed=1) == session_ratio_ci(base, sub, labels, seed=1)
    one = speedup(base[:30], sub[:30], sessions=labels[:30])          # one session: the paired bootstrap
    assert "two-level" not in one["method"]


def test_session_labels_must_match_between_sides():
    from tinytorch.capstone.scoring import event_score

    m = {"correct": np.ones(20), "latency_ms": np.full(6, 1.0) + np.arange(6) * 0.01, "parameter_bytes": 10,
         "serialized_bytes": 20, "latency_session": [0, 0, 0, 1, 1, 1]}
    b = dict(m, latency_session=[0, 0, 1, 1, 1, 1])
    with pytest.raises(ValueError, match="latency_session labels differ"):
        event_score("latency_sprint", m, b)
    with pytest.raises(ValueError, match="one integer session number per latency sample"):
        event_score("latency_sprint", dict(m, latency_session=[0, 1]), b)


def test_paired_speedup_cancels_a_machine_that_changes_speed():
    """Rounds 0-9 ran on a machine 30% slower than rounds 10-19. The submission is exactly 1.25x faster in
    every round: the median of per-round ratios says 1.25; a ratio of medians straddles the step and does not."""
    from tinytorch.capstone.scoring import paired_speedup, speedup

    base = np.array([1.3] * 10 + [1.0] * 10) * np.linspace(1.0, 1.01, 20)
    sub = base / 1.25
    sub[10] = 0.9            # one round where the machine stepped between the two requests
    labels = np.repeat([0, 1], 10)
    assert paired_speedup(base, sub) == pytest.approx(1.25)
    result = speedup(base, sub, sessions=labels)
    assert result["value"] == pytest.approx(1.25) and "per-round" in result["method"]
    assert "median over interleaved rounds" in result["formula"]
    assert result["low"] <= 1.25 <= result["high"]
    assert speedup(base, sub)["formula"].startswith("S = median(baseline latency_ms) / median(")   # no sessions
