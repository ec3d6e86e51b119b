import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.core.errors import UndefinedMetricWarning
from harness.metrics import histogram, matches_at, rate, rate_at, summary, sweep


def test_clopper_pearson_known_values():
    # Values from the exact binomial interval (e.g. R: binom.test(3, 10)$conf.int).
    r = rate(3, 10)
    assert r.value == pytest.approx(0.3)
    assert r.ci95 == pytest.approx((0.06673951, 0.65245285), abs=1e-7)
    zero = rate(0, 153)
    assert zero.ci95[0] == 0.0
    assert zero.ci95[1] == pytest.approx(1 - 0.025 ** (1 / 153), rel=1e-9)
    full = rate(17, 17)
    assert full.ci95 == pytest.approx((0.025 ** (1 / 17), 1.0), rel=1e-9)


def test_zero_trials_are_undefined_not_an_error():
    with pytest.warns(UndefinedMetricWarning):
        r = rate(0, 0)
    assert math.isnan(r.value)
    assert r.status == "undefined"
    assert r.to_dict() == {
        "k": 0,
        "n": 0,
        "value": None,
        "ci95": [None, None],
        "status": "undefined",
    }


def test_rate_refuses_impossible_counts():
    with pytest.raises(ValueError, match="0 <= k <= n"):
        rate(5, 3)


@given(st.lists(st.integers(0, 64), min_size=1, max_size=200), st.integers(-1, 70))
def test_rate_at_counts_distances_at_or_below_threshold(distances, threshold):
    hist = histogram(distances, 64)
    k, n = matches_at(hist, threshold)
    assert k == sum(d <= threshold for d in distances)
    assert n == len(distances)
    r = rate_at(hist, threshold)
    assert r.ci95[0] <= r.value <= r.ci95[1]


@given(st.lists(st.integers(0, 32), min_size=1, max_size=100))
def test_sweep_is_monotone(distances):
    hist = histogram(distances, 32)
    rows = sweep(hist, hist, range(33))
    values = [row["tpr"]["value"] for row in rows]
    assert values == sorted(values)
    assert values[-1] == 1.0


def test_summary():
    assert summary(histogram([0, 1, 1, 5], 8)) == {
        "n": 4,
        "mean": 1.75,
        "min": 0,
        "median": 1,
        "max": 5,
    }
    assert summary(np.zeros(9, dtype=int))["mean"] is None


def test_interval_coverage_by_simulation():
    """95% Clopper-Pearson intervals cover the true rate at least 95% of the time."""
    rng = np.random.default_rng(12345)
    for p, n in [(0.02, 50), (0.5, 17), (0.9, 30)]:
        ks = rng.binomial(n, p, size=400)
        covered = [lo <= p <= hi for lo, hi in (rate(int(k), n).ci95 for k in ks)]
        assert np.mean(covered) >= 0.94


def test_closed_form_clopper_pearson_equals_scipy_binomtest():
    from scipy.stats import binomtest

    for n in (1, 2, 7, 17, 136, 1000, 100_000):
        for k in sorted({0, 1, n // 3, n // 2, n - 1, n}):
            ref = binomtest(k, n).proportion_ci(confidence_level=0.95, method="exact")
            got = rate(k, n).ci95
            assert got[0] == pytest.approx(ref.low, abs=1e-9)
            assert got[1] == pytest.approx(ref.high, abs=1e-9)
