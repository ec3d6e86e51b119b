"""Curves, operating points, calibrated thresholds, bootstrap, operations, hash quality."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sklearn.metrics import det_curve, roc_auc_score, roc_curve

from harness import metrics, quality, thresholds
from harness.metrics import rate

hists = st.lists(st.integers(0, 30), min_size=9, max_size=9).filter(lambda h: sum(h) > 0)


def _expand(hist):
    return np.repeat(np.arange(len(hist)), hist)


@given(hists, hists)
def test_roc_from_histograms_equals_roc_on_raw_distances(pos, neg):
    got = metrics.roc(pos, neg)
    d_pos, d_neg = _expand(pos), _expand(neg)
    y = np.r_[np.ones(len(d_pos)), np.zeros(len(d_neg))]
    score = -np.r_[d_pos, d_neg]
    fpr, tpr, _ = roc_curve(y, score, drop_intermediate=False)
    assert np.allclose(got["roc"]["fpr"], fpr)
    assert np.allclose(got["roc"]["tpr"], tpr)
    assert got["auc"] == pytest.approx(roc_auc_score(y, score))
    # Each ROC corner is the staircase rate at its threshold, ties included.
    for t, f, r in zip(got["roc"]["threshold"], got["roc"]["fpr"], got["roc"]["tpr"], strict=True):
        assert f == pytest.approx(metrics.rate_at(neg, t).value)
        assert r == pytest.approx(metrics.rate_at(pos, t).value)
    det = got["det"]
    assert np.allclose(
        np.array(det["fnr"]),
        1 - np.array([metrics.rate_at(pos, t).value for t in det["threshold"]]),
    )


big_hists = st.lists(st.integers(0, 10**9), min_size=2, max_size=70)


@given(big_hists, st.data())
def test_roc_is_scikit_learn_to_the_last_bit(neg, data):
    """The histogram arithmetic gives scikit-learn's numbers exactly (bins as weighted
    samples), including collinear corners, empty bins and counts far beyond one sample each."""
    pos = data.draw(st.lists(st.integers(0, 10**6), min_size=len(neg), max_size=len(neg)))
    got = metrics.roc(pos, neg)
    if sum(pos) == 0 or sum(neg) == 0:
        assert got["status"] == "undefined"
        return
    d = np.arange(len(pos))
    y = np.r_[np.ones(len(d)), np.zeros(len(d))]
    score, weight = -np.r_[d, d], np.r_[pos, neg]
    fpr, tpr, thr = roc_curve(y, score, sample_weight=weight, drop_intermediate=False)
    det_fpr, det_fnr, det_thr = det_curve(y, score, sample_weight=weight)
    assert got["roc"] == {
        "threshold": [None if np.isinf(t) else int(-t) for t in thr],
        "fpr": fpr.tolist(),
        "tpr": tpr.tolist(),
    }
    assert got["det"] == {
        "threshold": [None if np.isinf(t) else int(-t) for t in det_thr],
        "fpr": det_fpr.tolist(),
        "fnr": det_fnr.tolist(),
    }
    assert got["auc"] == float(roc_auc_score(y, score, sample_weight=weight))


def test_auc_is_the_mann_whitney_probability():
    pos, neg = [5, 3, 1, 0, 0], [0, 1, 2, 3, 4]
    d_pos, d_neg = _expand(pos), _expand(neg)
    wins = sum((a < b) + 0.5 * (a == b) for a in d_pos for b in d_neg)
    assert metrics.roc(pos, neg)["auc"] == pytest.approx(wins / (len(d_pos) * len(d_neg)))


def test_eer_is_a_real_step_not_an_interpolation():
    pos, neg = [6, 2, 1, 1, 0], [0, 0, 1, 4, 5]
    eer = metrics.roc(pos, neg)["eer"]
    t = eer["threshold"]
    assert eer["fpr"] == pytest.approx(metrics.rate_at(neg, t).value)
    assert eer["fnr"] == pytest.approx(1 - metrics.rate_at(pos, t).value)


def test_undefined_curve_without_negatives():
    assert metrics.roc([1, 2], [0, 0])["status"] == "undefined"


@given(hists, hists, st.sampled_from([0.5, 0.1, 0.01, 1e-3]))
def test_tpr_at_fpr_is_the_last_step_within_target(pos, neg, target):
    got = metrics.tpr_at_fpr(pos, neg, target)
    t = got["threshold"]
    n_neg = sum(neg)
    if t is not None:
        assert metrics.rate_at(neg, t).value <= target
    nxt = 0 if t is None else t + 1
    if nxt < len(neg):  # the next step already exceeds the target
        assert metrics.rate_at(neg, nxt).value > target
    assert got["tpr"]["value"] == metrics.rate_at(pos, t).value
    if t is None:  # never the -1 placeholder: a status with its reason
        assert got["status"] == "unachievable"
        assert f"smallest observed FPR is {neg[0] / n_neg:.3g} at threshold 0" in got["reason"]
    else:
        assert got["status"] == ("ok" if n_neg >= 3 / target else "unresolved")


def test_unresolved_when_negatives_cannot_support_the_target():
    neg = np.zeros(65, dtype=np.int64)
    neg[30] = 136  # 17 images: 136 pairs, none close
    pos = np.zeros(65, dtype=np.int64)
    pos[2] = 17
    got = metrics.tpr_at_fpr(pos, neg, 1e-6)
    assert got["status"] == "unresolved"
    assert got["negatives_needed"] == 3_000_000
    assert metrics.resolvable(3_000_000, 1e-6)
    assert not metrics.resolvable(2_999_999, 1e-6)


def test_fpr_at_tpr():
    pos, neg = [2, 3, 5, 0], [0, 1, 1, 8]
    got = metrics.fpr_at_tpr(pos, neg, 0.5)
    assert got["threshold"] == 1  # 5/10 reached at distance 1
    assert got["fpr"]["k"] == 1
    with pytest.warns(metrics.UndefinedMetricWarning):
        undefined = metrics.fpr_at_tpr([0, 0], [1, 1], 0.9)
    assert (undefined["status"], undefined["threshold"]) == ("undefined", None)
    # Gated copies never match: with half the copies gated, TPR 0.9 is out of reach.
    gated = metrics.fpr_at_tpr(pos, neg, 0.9, misses=10)
    assert (gated["status"], gated["threshold"]) == ("unachievable", None)
    assert gated["tpr"]["n"] == 20


def test_threshold_choice_statuses_and_sample_size():
    assert metrics.threshold_choice([0, 0], 0.1, "x")["status"] == "undefined"
    unachievable = metrics.threshold_choice([5, 5], 0.1, "x")
    assert unachievable["threshold"] is None
    assert unachievable["reason"] == (
        "no threshold meets FPR <= 0.1 on x (smallest observed FPR is 0.5 at threshold 0)"
    )
    assert metrics.threshold_choice([0, 0, 10], 0.1, "x")["status"] == "unresolved"
    ok = metrics.threshold_choice([0, 0, 30], 0.1, "x")
    assert (ok["status"], ok["threshold"]) == ("ok", 1)
    # m images give m(m-1)/2 all-pairs; the fewest that reach n pairs.
    for n in (1, 2, 3, 4, 1000, 3_000_000_000):
        m = metrics.images_for_pairs(n)
        assert m * (m - 1) // 2 >= n > (m - 1) * (m - 2) // 2
    need = thresholds.required_sample(1e-9, 0.5)
    assert need["negative_pairs_per_part"] == 3_000_000_000
    assert need["images"] == 2 * need["images_per_part"] == 2 * 77_461


def test_precision_at_base_rate():
    tpr, fpr = rate(90, 100), rate(1, 1000)
    got = metrics.precision_at(tpr, fpr, 0.01)
    expected = 0.01 * 0.9 / (0.01 * 0.9 + 0.99 * 0.001)
    assert got["value"] == pytest.approx(expected)
    assert got["ci95"][0] < got["value"] < got["ci95"][1]
    with pytest.raises(ValueError, match="base_rate"):
        metrics.precision_at(tpr, fpr, 0)


# --- split, recommendation, bootstrap -------------------------------------------------------


def test_split_is_seeded_order_free_and_non_empty():
    ids = [f"img{i}" for i in range(40)]
    a = thresholds.split_images(ids, 0.5, seed=1)
    b = thresholds.split_images(ids[::-1], 0.5, seed=1)[::-1]
    assert np.array_equal(a, b)
    assert a.sum() == 20
    assert not np.array_equal(a, thresholds.split_images(ids, 0.5, seed=2))
    assert thresholds.split_images(["x", "y"], 0.05, 0).tolist().count(True) == 1


def _synthetic(n_images=60, n_bits=64, seed=0):
    """Random originals and two edits flipping a few bits; image 0 and 1 are near duplicates."""
    rng = np.random.default_rng(seed)
    bits = rng.random((n_images, n_bits)) < 0.5
    edited = []
    for flips in (2, 8):
        e = bits.copy()
        for i in range(n_images):
            e[i, rng.choice(n_bits, flips, replace=False)] ^= True
        edited.append(np.packbits(e, axis=1))
    return thresholds.AlgorithmHashes(
        n_bits=n_bits,
        originals=np.packbits(bits, axis=1),
        originals_ok=np.ones(n_images, bool),
        edited=np.stack(edited),
        edited_ok=np.ones((2, n_images), bool),
        groups=np.arange(n_images),
        chain_ids=("light", "heavy"),
    )


def test_negative_rows_sum_to_the_protocol_histograms():
    from harness import kernels

    data = _synthetic(20)
    members = np.arange(20) % 3 != 0
    ev = data.evidence(members)
    assert np.allclose(
        ev.negatives("calibration").sum(axis=0),
        kernels.all_pairs_histogram(data.originals[members], data.n_bits),
    )
    assert np.allclose(
        ev.negatives("all").sum(axis=0), kernels.all_pairs_histogram(data.originals, data.n_bits)
    )
    assert not ev.negatives("calibration")[~members].any()
    rows = data.evidence(members, "edited_vs_other_originals").negatives("calibration")
    idx = np.flatnonzero(members)
    expected = sum(
        kernels.cross_histogram(data.edited[c][idx], data.originals[idx], 64, idx, idx)
        for c in range(2)
    )
    assert np.allclose(rows.sum(axis=0), expected)


def test_recommendation_never_looks_at_held_out_pairs():
    data = _synthetic()
    ids = [f"i{k}" for k in range(60)]
    cal = thresholds.split_images(ids, 0.5, seed=0)
    first = thresholds.recommend(data.evidence(cal), 0.01, resamples=50)
    # Make every held-out image collide with every other: the threshold must not move.
    ho = np.flatnonzero(~cal)
    originals = data.originals.copy()
    originals[ho] = originals[ho[0]]
    tampered = thresholds.AlgorithmHashes(**{**data.__dict__, "originals": originals})
    second = thresholds.recommend(tampered.evidence(cal), 0.01, resamples=50)
    assert first["threshold"] == second["threshold"]
    assert second["held_out"]["fpr"]["value"] > first["held_out"]["fpr"]["value"]
    assert first["calibration"]["images"] + first["held_out"]["images"] == 60
    assert [t["transform"] for t in first["held_out"]["tpr"]] == ["light", "heavy"]
    # 435 calibration pairs support 1e-2 (needs 300) but not 1e-3.
    assert first["status"] == "ok"
    assert thresholds.recommend(data.evidence(cal), 1e-3, resamples=10)["status"] == ("unresolved")


def test_recommendation_is_deterministic():
    data = _synthetic()
    ids = [f"i{k}" for k in range(60)]
    cal = thresholds.split_images(ids, 0.5, seed=0)
    a = thresholds.recommend(data.evidence(cal), 0.05, resamples=100, seed=3)
    b = thresholds.recommend(data.evidence(cal), 0.05, resamples=100, seed=3)
    assert a == b


def test_gated_copies_are_misses_and_a_given_threshold_uses_every_image():
    data = _synthetic()
    gated = np.zeros((2, 60), bool)
    gated[1, :6] = True  # the gate discarded ten percent of the heavy edits
    edited_ok = ~gated
    gated_data = thresholds.AlgorithmHashes(
        **{**data.__dict__, "edited_ok": edited_ok, "edited_gated": gated}
    )
    cal = thresholds.split_images([f"i{k}" for k in range(60)], 0.5, seed=0)
    scored = thresholds.score_at(gated_data.evidence(cal), 64, resamples=50)
    heavy = scored["tpr"][1]
    assert (heavy["k"], heavy["n"], heavy["gated"]) == (54, 60, 6)  # every hashed copy matches
    assert scored["tpr_pooled"]["gated"] == 6
    assert scored["images"] == 60
    assert scored["fpr"]["n"] == 60 * 59 // 2  # all pairs of every image, no split
    with pytest.raises(ValueError, match="threshold"):
        thresholds.score_at(gated_data.evidence(cal), 65)


def test_bootstrap_by_image_covers_the_true_pooled_tpr():
    """Images differ in how robust they are (clustered positives); the 95% interval over images
    covers the true pooled TPR in at least 94% of simulated corpora."""
    rng = np.random.default_rng(2024)
    n_images, edits, sims = 200, 10, 1000
    truth = 4 / 5.5  # per-image robustness ~ Beta(4, 1.5); pooled TPR = its mean
    covered = 0
    for sim in range(sims):
        hits = rng.binomial(edits, rng.beta(4, 1.5, size=n_images))
        lo, hi = thresholds.bootstrap_ratio(hits, np.full(n_images, edits), 999, seed=sim)
        covered += lo <= truth <= hi
    assert covered / sims >= 0.94


def test_bootstrap_weights_drawn_once_are_the_batched_draws(monkeypatch):
    """A resample set small enough to be drawn once and reused gives the same intervals, to the
    bit, as drawing it afresh in small batches."""
    data = _synthetic()
    cal = thresholds.split_images([f"i{k}" for k in range(60)], 0.5, seed=0)
    ev = data.evidence(cal)
    reused = [thresholds.recommend(ev, 0.05, resamples=300, seed=s) for s in (1, 1, 2)]
    assert reused[0] == reused[1]
    (batch,) = thresholds._weights(1, 30, 300)
    assert not batch.flags.writeable  # shared by every later call
    monkeypatch.setattr(thresholds, "_REUSED_CELLS", 0)  # nothing kept:
    monkeypatch.setattr(thresholds, "_BATCH_CELLS", 7 * 60)  # batches of a few resamples
    assert [thresholds.recommend(ev, 0.05, resamples=300, seed=s) for s in (1, 2)] == [
        reused[0],
        reused[2],
    ]


def test_bootstrap_ratio_degenerate_and_tiny_samples():
    assert thresholds.bootstrap_ratio([0, 0, 0], [5, 5, 5], 100, 0) == [0.0, 0.0]
    assert thresholds.bootstrap_ratio([1], [2], 100, 0) == [None, None]
    assert thresholds.bootstrap_ratio([1, 2], [2, 2], 0, 0) == [None, None]


# --- operations --------------------------------------------------------------------------


# --- hash quality and hygiene --------------------------------------------------------------


def test_random_hashes_look_ideal_and_degenerate_ones_do_not():
    rng = np.random.default_rng(0)
    packed = np.packbits(rng.random((400, 64)) < 0.5, axis=1)
    ids = [str(i) for i in range(400)]
    q = quality.hash_quality(packed, 64, ids, np.arange(400))
    assert q["distances"]["mean"] == pytest.approx(32, abs=0.3)
    assert q["distances"]["sd"] == pytest.approx(4, abs=0.2)
    assert q["distances"]["ks_distance"] < 0.05
    assert q["bit_balance"]["constant_bits"] == []
    assert q["bit_correlation"]["max_abs"] < 0.25
    packed[:3] = 0  # three all-zero hashes: degenerate and one identical group
    q = quality.hash_quality(packed, 64, ids, np.arange(400))
    assert [d["image"] for d in q["degenerate"]] == ["0", "1", "2"]
    assert q["identical_hash_groups"]["groups"] == [["0", "1", "2"]]


@pytest.mark.parametrize("n_bits", [0, 1, 7, 64, 144, 256, 1024])
def test_fair_binomial_cdf_is_scipy_stats_bit_for_bit(n_bits):
    from scipy.stats import binom

    expected = binom.cdf(np.arange(n_bits + 1), n_bits, 0.5)
    assert np.array_equal(quality.fair_binomial_cdf(n_bits), expected)


def test_constant_bits_are_reported():
    bits = np.zeros((5, 16), bool)
    bits[:, :8] = np.random.default_rng(1).random((5, 8)) < 0.5
    q = quality.hash_quality(np.packbits(bits, axis=1), 16, list("abcde"), np.arange(5))
    assert q["bit_balance"]["constant_bits"] == list(range(8, 16))


def test_near_duplicates_join_transitively():
    bits = np.zeros((5, 64), bool)
    bits[1, :3] = True  # 3 from 0
    bits[2, :6] = True  # 3 from 1, 6 from 0: joined through 1
    bits[3, :] = True
    bits[4, 10:40] = True
    labels, links = quality.near_duplicate_groups(np.packbits(bits, axis=1), 3)
    assert labels.tolist() == [0, 0, 0, 3, 4]
    assert links == [(0, 1, 3), (1, 2, 3)]
