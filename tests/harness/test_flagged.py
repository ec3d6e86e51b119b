"""The flagged share against database size: exact formula, beta-binomial model, translation."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy.special import betaln, comb
from scipy.stats import betabinom

from harness import flagged, kernels
from harness.flagged import MatchCounts


def _counts(matches, pool, hashable=None) -> MatchCounts:
    m = np.asarray(matches, np.int64)
    ok = np.ones(len(m), bool) if hashable is None else np.asarray(hashable, bool)
    return MatchCounts(m * ok, np.broadcast_to(np.asarray(pool, np.int64), m.shape) * ok, ok)


def _family_hashes(rng: np.random.Generator, sizes: list[int], n_bits: int = 64):
    """Random 64-bit hashes where each family's members differ from its seed by <= 2 bits."""
    rows, family = [], []
    for f, size in enumerate(sizes):
        seed = rng.random(n_bits) < 0.5
        for _ in range(size):
            bits = seed.copy()
            bits[rng.choice(n_bits, 2, replace=False)] ^= rng.random(2) < 0.5
            rows.append(bits)
            family.append(f)
    return np.packbits(np.array(rows), axis=1), np.array(family)


def test_p_no_match_is_the_hypergeometric_zero():
    m = np.array([0, 1, 3, 7, 7, 0])
    n = np.array([10, 10, 10, 10, 20, 0])
    d = np.array([1, 2, 3, 5, 10])
    got = flagged.p_no_match(m, n, d)
    for i in range(len(m)):
        for j, dd in enumerate(d):
            want = (
                1.0 if n[i] == 0 else comb(n[i] - m[i], dd, exact=True) / comb(n[i], dd, exact=True)
            )
            assert got[i, j] == pytest.approx(want, rel=1e-12, abs=1e-300)


def test_p_no_match_is_stable_at_corpus_scale():
    # C(n - m, D) / C(n, D) with n ~ 1e6 overflows any direct evaluation; in log space it is
    # (n - D)(n - D - 1)(n - D - 2) / (n (n - 1) (n - 2)) for m = 3.
    n, m, d = 1_000_000, 3, 500_000
    want = (n - d) * (n - d - 1) * (n - d - 2) / (n * (n - 1) * (n - 2))
    assert flagged.p_no_match([m], [n], [d])[0, 0] == pytest.approx(want, rel=1e-9)


def test_exact_share_agrees_with_random_databases_on_planted_families():
    """Families of known sizes, hygiene groups spanning families: the exact formula against a
    brute-force simulation of databases drawn without replacement from other groups."""
    rng = np.random.default_rng(7)
    sizes = [1] * 60 + [2] * 10 + [3] * 5 + [5] * 3 + [12, 25]
    hashes, family = _family_hashes(rng, sizes)
    n = len(hashes)
    # Hygiene: pairs of images share a group label (tiles of one photo, merged duplicates).
    groups = np.arange(n) // 2
    hist = flagged.impostor_histograms(hashes, 64, groups, np.ones(n, bool))
    counts = flagged.match_counts(hist, threshold=8)
    # Every planted family member matches its family outside its own group, and nothing else.
    close = kernels.pairwise(hashes, hashes) <= 8
    eligible = groups[:, None] != groups[None, :]
    np.testing.assert_array_equal(counts.matches, (close & eligible).sum(axis=1))
    assert counts.matches.sum() > 0
    assert np.all(close[family[:, None] != family[None, :]] == False)  # noqa: E712

    sizes_d = np.array([1, 5, 20, 60, counts.max_database])
    exact = flagged.measured_curve(counts, sizes_d, resamples=50)["share"]
    trials = 400
    hits = np.zeros(len(sizes_d))
    for q in range(n):
        others = np.flatnonzero(eligible[q])
        for j, d in enumerate(sizes_d):
            draws = np.array([rng.choice(others, d, replace=False) for _ in range(trials)])
            hits[j] += close[q, draws].any(axis=1).mean()
    simulated = hits / n
    se = np.sqrt(np.maximum(np.array(exact) * (1 - np.array(exact)), 1e-4) / (n * trials))
    np.testing.assert_array_less(np.abs(simulated - exact), 5 * se + 1e-3)
    assert exact[-1] > exact[0]


def test_gated_uploads_stay_in_the_denominator():
    m = np.array([0, 2, 5, 0, 1, 0, 0, 3])
    gated = np.array([False, False, False, False, False, False, True, True])
    counts = _counts(m, 50, ~gated)
    curve = flagged.measured_curve(counts, [10, 50], resamples=200, seed=1)
    assert curve["n_gated"] == 2
    assert curve["n_uploads"] == 8
    np.testing.assert_allclose(np.array(curve["share"]), np.array(curve["share_hashable"]) * 6 / 8)
    assert curve["share_hashable"][1] == pytest.approx(3 / 6)  # at D = pool every match is found
    for (lo, hi), s in zip(curve["ci95"], curve["share"], strict=True):
        assert lo <= s <= hi


def test_curve_is_deterministic_and_seeded():
    counts = _counts(np.arange(30) % 4, 100)
    a = flagged.measured_curve(counts, resamples=100, seed=3)
    assert a == flagged.measured_curve(counts, resamples=100, seed=3)
    assert a["ci95"] != flagged.measured_curve(counts, resamples=100, seed=4)["ci95"]
    assert a["database_size"][0] == 1
    assert a["database_size"][-1] == 100
    with pytest.raises(ValueError, match=r"\[1, 100\]"):
        flagged.measured_curve(counts, [101])


@pytest.mark.parametrize(("a", "b"), [(0.05, 300.0), (0.3, 2000.0)])
def test_beta_binomial_fit_recovers_its_parameters(a, b):
    rng = np.random.default_rng(11)
    n = 3000
    m = betabinom.rvs(n - 1, a, b, size=n, random_state=rng)
    model = flagged.model_curve(_counts(m, n - 1), [n - 1, 10**7], seed=2)
    assert model["status"] == "ok"
    assert model["ci95_a"][0] <= a <= model["ci95_a"][1]
    assert model["ci95_b"][0] <= b <= model["ci95_b"][1]
    truth = -np.expm1(betaln(a, b + 10**7) - betaln(a, b))
    assert model["ci95"][1][0] <= truth <= model["ci95"][1][1]
    assert model["resamples_unconverged"] == 0


def test_vectorised_refits_agree_with_scipy_optimisation():
    rng = np.random.default_rng(5)
    m = betabinom.rvs(999, 0.1, 500.0, size=1000, random_state=rng)
    fit = flagged.fit_beta_binomial(m, np.full(1000, 999))
    weights = rng.multinomial(1000, np.full(1000, 1e-3), size=4).astype(float)
    a, b, ok = flagged._refits(m.astype(float), np.full(1000, 999.0), weights, fit)
    assert ok.all()
    for r in range(4):
        one = flagged.fit_beta_binomial(m, np.full(1000, 999), weights[r])
        assert a[r] == pytest.approx(one.a, rel=1e-4)
        assert b[r] == pytest.approx(one.b, rel=1e-4)


def test_model_predicts_the_exact_share_of_a_larger_corpus():
    """Fit on a subset's counts, predict at the whole corpus's size: the validation in small."""
    rng = np.random.default_rng(3)
    big = 20_000
    p = rng.beta(0.05, 400.0, size=big)
    m_small = rng.binomial(1999, p[:2000])
    model = flagged.model_curve(_counts(m_small, 1999), [big - 1], seed=0)
    exact = -np.mean(np.expm1((big - 1) * np.log1p(-p)))
    lo, hi = model["ci95"][0]
    assert lo <= exact <= hi


def test_few_matched_queries_are_unresolved_with_images_needed():
    m = np.zeros(500, np.int64)
    m[:9] = 1
    counts = _counts(m, 499)
    model = flagged.model_curve(counts, [10**6])
    assert model["status"] == "unresolved"
    assert "9 query images" in model["reason"]
    p_hi = counts.pair_fpr().ci95[1]
    assert model["images_needed"] == math.ceil(math.sqrt(10 / p_hi))


def test_binomial_counts_give_a_degenerate_fit():
    """No spread between images (every image equally likely to collide): a -> inf, unresolved."""
    rng = np.random.default_rng(0)
    m = rng.binomial(999, 2e-3, size=1000)
    model = flagged.model_curve(_counts(m, 999), [10**6])
    assert model["status"] == "unresolved"
    assert "degenerate" in model["reason"]


def test_flagged_share_answers_each_size_measured_or_model():
    rng = np.random.default_rng(1)
    m = betabinom.rvs(1999, 0.05, 300.0, size=2000, random_state=rng)
    answer = flagged.flagged_share(_counts(m, 1999), [100, 1999, 1e6, 1e7])
    kinds = [e["kind"] for e in answer["at"]]
    assert kinds == ["measured", "measured", "model", "model"]
    assert answer["at"][2]["label"] == flagged.MODEL_LABEL
    curve_kinds = {c["kind"] for c in answer["curve"]}
    assert curve_kinds == {"measured", "model"}
    assert max(c["database_size"] for c in answer["curve"]) == 10**7
    p = answer["pair_fpr"]["value"]
    for e in answer["at"]:
        assert e["expected_matches_per_upload"]["value"] == pytest.approx(p * e["database_size"])
        indep = e["p_upload_flagged_if_independent"]["value"]
        assert indep == pytest.approx(1 - (1 - p) ** e["database_size"])
        assert e["share"] <= indep + 1e-9  # families make the independence figure an overstatement
    assert (
        answer["at"][3]["share"] < 0.5 < answer["at"][3]["p_upload_flagged_if_independent"]["value"]
    )
    with pytest.raises(ValueError, match="database sizes"):
        flagged.flagged_share(_counts(m, 1999), [0])


def test_operational_uses_the_per_image_share():
    rng = np.random.default_rng(1)
    m = betabinom.rvs(1999, 0.05, 300.0, size=2000, random_state=rng)
    at = flagged.flagged_share(_counts(m, 1999), [1e7])["at"][0]
    op = flagged.operational(at, uploads_per_day=1e6, account_uploads=20, account_matches=3)
    share = at["share"]
    assert op["flagged_uploads_per_day"]["value"] == pytest.approx(share * 1e6)
    assert op["p_account_flagged"]["value"] == pytest.approx(
        1 - sum(math.comb(20, k) * share**k * (1 - share) ** (20 - k) for k in range(3))
    )
    assert op["expected_matches_per_day"]["value"] == pytest.approx(
        at["expected_matches_per_upload"]["value"] * 1e6
    )
    assert "model-based" in op["verdict"]
    assert "p_upload_flagged_if_independent" in op

    few = flagged.flagged_share(_counts(np.zeros(100, np.int64), 99), [1e7])["at"][0]
    assert few["kind"] == "unresolved"
    op = flagged.operational(few, uploads_per_day=1e6)
    assert op["verdict"].startswith("unresolved")
    assert "flagged_uploads_per_day" not in op


def test_match_counts_reads_histograms_cumulatively():
    hist = np.array([[1, 0, 2, 5], [0, 0, 0, 8], [3, 3, 1, 1]])
    counts = flagged.match_counts(hist, 1, hashable=[True, True, False])
    np.testing.assert_array_equal(counts.matches, [1, 0, 0])
    np.testing.assert_array_equal(counts.pool, [8, 8, 0])
    assert counts.n_gated == 1
    with pytest.raises(ValueError, match=">= 0"):
        flagged.match_counts(hist, -1)


def test_plot_draws_measured_and_model_parts_apart():
    from harness.report import plots

    rng = np.random.default_rng(1)
    m = betabinom.rvs(999, 0.05, 300.0, size=1000, random_state=rng)
    curve = flagged.flagged_share(_counts(m, 999), [1e7], model_resamples=20)["curve"]
    svg = plots.flagged_share({"pdq <= 31": curve}, {"pdq <= 31": "#1f77b4"}, 1e7)
    assert svg.startswith("<svg")
    assert "pdq &lt;= 31 (measured)" in svg
    assert "pdq &lt;= 31 (model-based)" in svg
    assert svg.count('stroke-dasharray="5 3"') == 2  # the model line and its legend entry
    assert svg == plots.flagged_share({"pdq <= 31": curve}, {"pdq <= 31": "#1f77b4"}, 1e7)


def test_a_corpus_without_pairs_answers_without_numbers():
    counts = _counts(np.zeros(3, np.int64), 0, [False, False, False])
    with pytest.warns(UserWarning, match="zero trials"):
        answer = flagged.flagged_share(counts, [1e6])
    assert answer["curve"] == []
    assert "images would give" not in answer["at"][0]["reason"]
    assert answer["at"][0]["kind"] == "unresolved"
    assert answer["at"][0]["expected_matches_per_upload"] is None
    assert answer["n_gated"] == 3
    op = flagged.operational(answer["at"][0], uploads_per_day=10)
    assert op["verdict"].startswith("unresolved")


def test_split_counts_scores_given_on_all_and_chosen_on_held_out():
    rng = np.random.default_rng(4)
    hashes, _ = _family_hashes(rng, [1] * 20 + [3, 4])
    n = len(hashes)
    groups = np.arange(n)
    ok = np.ones(n, bool)
    ok[0] = False  # gated
    uploads = np.ones(n, bool)
    uploads[1] = False  # an exact duplicate: not an upload at all
    cal = np.arange(n) % 2 == 0

    def against(part):  # each image's histogram against the hashable uploads of one part
        ref = ok & uploads & part
        rows = kernels.cross_histogram(hashes, hashes[ref], 64, groups, groups[ref], per_query=True)
        return rows * ok[:, None]

    vs_cal, vs_ho = against(cal), against(~cal)
    given = flagged.split_counts(
        vs_cal, vs_ho, cal, 8, uploads=uploads, hashable=ok, held_out=False
    )
    whole = flagged.match_counts(
        flagged.impostor_histograms(hashes, 64, groups, ok & uploads), 8, ok & uploads
    )
    np.testing.assert_array_equal(given.matches, whole.matches[uploads])
    assert given.n_uploads == n - 1
    assert given.n_gated == 1
    chosen = flagged.split_counts(
        vs_cal, vs_ho, cal, 8, uploads=uploads, hashable=ok, held_out=True
    )
    ho = ~cal & uploads
    only = flagged.impostor_histograms(hashes[ho], 64, groups[ho], ok[ho])
    np.testing.assert_array_equal(chosen.matches, flagged.match_counts(only, 8, ok[ho]).matches)
    np.testing.assert_array_equal(chosen.pool, flagged.match_counts(only, 8, ok[ho]).pool)


def test_report_shows_the_curve_and_the_leaderboard_share(tmp_path):
    """A result that carries curves gets the plot section and a leaderboard column; one that
    does not (written before they were kept) renders as before."""
    from harness.cli import main
    from harness.report.html import render_html
    from harness.report.markdown import render_markdown

    suite = tmp_path / "suite.toml"
    suite.write_text(
        'name = "t"\nversion = 1\ndataset = "skimage"\nalgorithms = ["phash"]\n'
        'transforms = ["identity", "jpeg(quality=50)"]\nbootstrap_resamples = 0\n'
    )
    assert main(["run", "--quiet", "--suite", str(suite), "--out", str(tmp_path / "o")]) == 0
    result = json.loads((tmp_path / "o" / "results.json").read_text())
    result.pop("flagged_share", None)
    for row in result["leaderboard"]["rows"]:
        row.pop("flagged", None)
    before = render_html(result)
    assert 'id="flagged"' not in before
    assert "uploads flagged" not in render_markdown(result)

    rng = np.random.default_rng(1)
    m = betabinom.rvs(999, 0.05, 300.0, size=1000, random_state=rng)
    answer = flagged.flagged_share(_counts(m, 999), [1e7], model_resamples=20)
    result["flagged_share"] = [
        {"algorithm": "phash", "database_sizes": [1e7], "given": [{"threshold": 10, **answer}]}
    ]
    for row in result["leaderboard"]["rows"]:
        row["flagged"] = answer["at"][0]
    html = render_html(result)
    assert 'id="flagged"' in html
    assert '<a href="#flagged">Uploads flagged</a>' in html
    assert "phash ≤10 (model-based)" in html
    assert "uploads flagged" in html
    share = f"{answer['at'][0]['share']:.3g}"
    assert share in render_markdown(result)


@pytest.mark.parametrize("plain", [False, True])
def test_rendered_answer_has_three_lines_per_database_size(plain):
    from harness.report.markdown import render_flagged

    rng = np.random.default_rng(1)
    m = betabinom.rvs(999, 0.05, 300.0, size=1000, random_state=rng)
    answer = flagged.flagged_share(_counts(m, 999), [1e7], model_resamples=20)
    few = flagged.flagged_share(_counts(np.zeros(50, np.int64), 49), [1e7])
    ops = [flagged.operational(answer["at"][0], uploads_per_day=1e6)]
    lines = [x for x in render_flagged(answer, ops, plain) if x.startswith("- ")]
    assert lines[0].startswith("- Measured (exact) up to the corpus size:")
    assert lines[1].startswith("- Model-based at D = 1e+07:")
    assert lines[2].startswith("- Expected false matches per upload at D = 1e+07: p x D =")
    assert ("**" in lines[1]) is not plain
    text = "\n".join(render_flagged(answer, ops, plain))
    assert "In production at D = 1e+07:" in text
    lines = [x for x in render_flagged(few, [], plain) if x.startswith("- ")]
    assert "unresolved" in lines[1]
    assert "images would give that" in lines[1]


def test_threshold_command_prints_measured_model_and_expected_matches(capsys):
    from harness.cli import main

    args = ["threshold", "--quiet", "--algorithm", "pdq", "--at", "31", "--database-size", "1e7"]
    assert main(args) == 0
    text = capsys.readouterr().out
    section = text.split("Share of innocent uploads flagged", 1)[1]
    lines = [line for line in section.splitlines() if line.startswith("- ")]
    assert lines[0].startswith("- Measured (exact) up to the corpus size:")
    # 17 photographs have no PDQ pair within 31 bits: the model cannot be fitted.
    assert lines[1].startswith("- At D = 1e+07: unresolved")
    assert "images would give that" in lines[1]
    assert lines[2].startswith("- Expected false matches per upload at D = 1e+07: p x D =")
    assert "p_upload_flagged_if_independent" in lines[2]


def test_run_keeps_the_curve_per_algorithm_and_threshold(tmp_path):
    from harness.cli import main

    suite = tmp_path / "suite.toml"
    suite.write_text(
        'name = "t"\nversion = 1\ndataset = "skimage"\nalgorithms = ["phash"]\n'
        'transforms = ["identity", "jpeg(quality=50)"]\ntarget_fprs = [0.05]\n'
        "bootstrap_resamples = 50\ndatabase_sizes = [1e5]\n[thresholds]\nphash = [30]\n"
    )
    assert main(["run", "--quiet", "--suite", str(suite), "--out", str(tmp_path / "o")]) == 0
    result = json.loads((tmp_path / "o" / "results.json").read_text())
    (entry,) = result["flagged_share"]
    assert entry["algorithm"] == "phash"
    assert entry["database_sizes"] == [1e5]
    (given,) = entry["given"]
    assert given["threshold"] == 30
    assert given["queries"] == "all images"
    kinds = {c["kind"] for c in given["curve"]}
    assert "measured" in kinds
    for point in given["curve"]:
        assert set(point) == {"database_size", "share", "ci95", "kind"}
        assert point["ci95"][0] <= point["share"] <= point["ci95"][1]
    assert given["at"][0]["database_size"] == 1e5
    assert all(c["queries"].startswith("held-out") for c in entry["chosen"])


def test_a_fit_where_every_pair_matches_warns_nothing():
    """Every pair within the threshold (all-equal hashes at the largest threshold): the fit's
    starting point stays finite, no NumPy warning reaches the user."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fit = flagged.fit_beta_binomial([5, 5, 5], [5, 5, 5])
        answer = flagged.flagged_share(_counts(np.full(20, 19), 19), [1e6])
    assert min(fit.a, fit.b) > 0
    assert answer["at"][0]["kind"] in {"measured", "model-based", "unresolved"}
