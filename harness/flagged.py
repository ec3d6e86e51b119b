"""What a platform sees: the share of innocent uploads flagged against a database of D hashes.

A pair false-match rate ``p`` says little about this on its own: collisions concentrate in
families of similar images, so ``1 - (1 - p)^D`` (independent pairs) overstates the flagged share,
by several times inside a clip-art corpus. The share follows exactly from each image's match
count instead. Query image ``q`` has ``n_q`` eligible others (hashable, of another hygiene group:
the pairs the pair FPR counts) and matches ``m_q`` of them at the threshold; a database of ``D``
of those drawn without replacement misses all ``m_q`` with probability

    C(n_q - m_q, D) / C(n_q, D)

and the share flagged is one minus its mean over uploads (:func:`measured_curve`). Uploads a
quality gate discards are uploads too: they can never be flagged, so they stay in the
denominator, and the share among hashable uploads is given beside it.

Beyond the corpus the share is model-based (:func:`model_curve`): per-image match probabilities
``p_q ~ Beta(a, b)``, fitted by maximum likelihood to the ``m_q`` (beta-binomial), give
``1 - B(a, b + D) / B(a, b)`` at any ``D``. The model extrapolates in database size at a threshold
the corpus resolves, never to stricter thresholds; it is fitted only when at least
:data:`MIN_MATCHED` query images have a match, and otherwise answers "unresolved" with the images
needed. Intervals come from a bootstrap over query images.

Everything here is a pure function of the per-image match counts, which come from the per-image
impostor histograms of a run by a cumulative sum (:func:`match_counts`): no second pass over
pairs, memory linear in images. Counts are grouped by their distinct ``(m_q, n_q)`` values, so the
curve, the fit and its bootstrap refits cost well under a second at 10,000 images
(``benchmarks/perf/bench_flagged.py``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.special import betaln, digamma, gammaln, polygamma

from harness import kernels
from harness.metrics import Rate, rate

#: Query images with at least one match below which the beta-binomial is not fitted.
MIN_MATCHED = 10
#: Largest Beta shape ``a`` accepted. Beyond it the fitted spread of per-image match
#: probabilities is indistinguishable from binomial noise (the optimum runs off towards
#: ``a -> inf``, e.g. a = 915 on 500 clip-art images at PDQ <= 20): the counts carry no
#: information about the tail the extrapolation needs, so the fit counts as degenerate.
MAX_SHAPE = 100.0
#: Search box for ``log a`` and ``log b``.
_LOG_BOUNDS = ((math.log(1e-6), math.log(1e6)), (math.log(1e-6), math.log(1e15)))
#: Bootstrap resamples: the exact curve is cheap; each model resample is one refit.
CURVE_RESAMPLES = 1000
MODEL_RESAMPLES = 200
#: Default database sizes a platform asks about beyond the corpus.
DEFAULT_DATABASE_SIZES = (1e6, 1e7)

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class MatchCounts:
    """Per-upload match counts at one threshold.

    Attributes
    ----------
    matches : int64 array, shape (n_uploads,)
        ``m_q``: eligible others within the threshold (0 for an unhashable upload).
    pool : int64 array, shape (n_uploads,)
        ``n_q``: eligible others (hashable, other hygiene group; 0 for an unhashable upload).
    hashable : bool array, shape (n_uploads,)
        False where a quality gate discarded the upload's hash: it can never be flagged.
    """

    matches: IntArray
    pool: IntArray
    hashable: npt.NDArray[np.bool_]

    def __post_init__(self) -> None:
        if not (self.matches.shape == self.pool.shape == self.hashable.shape):
            raise ValueError("matches, pool and hashable need one entry per upload")
        if np.any(self.matches < 0) or np.any(self.matches > self.pool):
            raise ValueError("need 0 <= matches <= pool for every upload")

    @property
    def n_uploads(self) -> int:
        return len(self.matches)

    @property
    def n_gated(self) -> int:
        return int((~self.hashable).sum())

    @property
    def n_matched(self) -> int:
        """Hashable query images with at least one match."""
        return int(((self.matches > 0) & self.hashable).sum())

    @property
    def max_database(self) -> int:
        """Largest ``D`` every hashable upload can be queried against (0 if none can)."""
        pools = self.pool[self.hashable & (self.pool > 0)]
        return int(pools.min()) if len(pools) else 0

    def pair_fpr(self) -> Rate:
        """The pair false-match rate these counts imply. Each unordered pair appears in both of
        its images' rows (queries and database are the same images), hence the halving."""
        return rate(int(self.matches.sum()) // 2, int(self.pool.sum()) // 2)


def match_counts(
    impostor_hist: npt.ArrayLike,
    threshold: int,
    hashable: npt.ArrayLike | None = None,
) -> MatchCounts:
    """Match counts at ``threshold`` from per-image impostor histograms.

    Parameters
    ----------
    impostor_hist : int array, shape (n_uploads, levels)
        Row ``q``: counts of image ``q``'s eligible pairs at each distance.
    threshold : int
        Pairs at distance ``<= threshold`` match.
    hashable : bool array, shape (n_uploads,), optional
        Uploads whose hash a quality gate kept; default all.
    """
    hist = np.asarray(impostor_hist, dtype=np.int64)
    if hist.ndim != 2:
        raise ValueError(f"impostor_hist must be 2-D (uploads x levels), got shape {hist.shape}")
    if threshold < 0:
        raise ValueError(f"threshold must be >= 0, got {threshold}")
    ok = np.ones(len(hist), bool) if hashable is None else np.asarray(hashable, bool)
    matches = hist[:, : threshold + 1].sum(axis=1) * ok
    return MatchCounts(matches=matches, pool=hist.sum(axis=1) * ok, hashable=ok)


def split_counts(
    vs_calibration: npt.ArrayLike,
    vs_held_out: npt.ArrayLike,
    calibration: npt.ArrayLike,
    threshold: int,
    *,
    uploads: npt.ArrayLike,
    hashable: npt.ArrayLike,
    held_out: bool,
) -> MatchCounts:
    """Match counts from a run's per-image impostor histograms against its two parts.

    A given threshold is scored on every upload against every other (``held_out=False``: the
    two histograms summed); a threshold the harness chose on the calibration images is scored
    with held-out images as both queries and database (``held_out=True``).

    Parameters
    ----------
    vs_calibration, vs_held_out : int arrays, shape (n_images, levels)
        Each image's impostor-distance counts against the calibration / held-out images.
    calibration : bool array, shape (n_images,)
    threshold : int
    uploads : bool array, shape (n_images,)
        Images that are uploads (decoded, not an exact duplicate of another).
    hashable : bool array, shape (n_images,)
        Uploads whose hash the algorithm's quality gate kept.
    held_out : bool
    """
    cal = np.asarray(calibration, bool)
    rows = np.asarray(uploads, bool) & (~cal if held_out else True)
    hist = np.asarray(vs_held_out, np.int64)
    if not held_out:
        hist = hist + np.asarray(vs_calibration, np.int64)
    return match_counts(hist[rows], threshold, np.asarray(hashable, bool)[rows])


def impostor_histograms(
    hashes: npt.ArrayLike,
    n_bits: int,
    groups: npt.ArrayLike,
    hashable: npt.ArrayLike,
    metric: kernels.Metric | None = None,
) -> IntArray:
    """Each image's distance histogram against every hashable image of another group.

    Parameters
    ----------
    hashes : uint8 array, shape (n, n_bytes)
    n_bits : int
    groups : array, shape (n,)
        Hygiene labels: images sharing one (the image itself, tiles of one photo, merged near
        duplicates) never form a pair.
    hashable : bool array, shape (n,)
        Images whose hash counts; the rows of the others are zero.

    Returns
    -------
    int64 array, shape (n, n_bits + 1)
    """
    x = np.asarray(hashes, np.uint8)
    ok = np.asarray(hashable, bool)
    g = np.asarray(groups)
    out = np.zeros((len(x), n_bits + 1), dtype=np.int64)
    out[ok] = kernels.cross_histogram(
        x[ok], x[ok], n_bits, g[ok], g[ok], per_query=True, metric=metric
    )
    return out


def database_grid(max_size: int, per_decade: int = 8) -> IntArray:
    """Integer database sizes from 1 to ``max_size`` spaced evenly on a log scale (both ends in)."""
    if max_size < 1:
        return np.zeros(0, dtype=np.int64)
    n = max(2, math.ceil(per_decade * math.log10(max_size)) + 1)
    return np.unique(np.round(np.logspace(0, math.log10(max_size), n)).astype(np.int64))


def _distinct(counts: MatchCounts) -> tuple[IntArray, IntArray, FloatArray, IntArray]:
    """Distinct ``(m_q, n_q, hashable)`` rows over all uploads and how often each occurs.

    Uploads share few distinct counts, so every sum over uploads becomes a weighted sum over
    these rows (and a bootstrap resample a multinomial draw of their weights).
    """
    keys, weight = np.unique(
        np.stack([counts.matches, counts.pool, counts.hashable.astype(np.int64)]),
        axis=1,
        return_counts=True,
    )
    return keys[0], keys[1], keys[2].astype(np.float64), weight.astype(np.int64)


def log_p_no_match(m: npt.ArrayLike, n: npt.ArrayLike, d: npt.ArrayLike) -> FloatArray:
    """``log(C(n - m, D) / C(n, D))`` for every ``(m, n)`` row and ``D`` column.

    Parameters
    ----------
    m, n : int arrays, shape (k,)
        Matches and eligible others per query; ``m = 0`` (including ``n = 0``, nothing to
        match) gives exactly 0.
    d : int array, shape (g,)
        Database sizes, each ``<= n`` wherever ``n > 0``.

    Returns
    -------
    float array, shape (k, g)
        ``-inf`` where every database of that size holds a match (``n - m < D``).
    """
    m = np.asarray(m, np.float64)[:, None]
    n = np.asarray(n, np.float64)[:, None]
    d = np.asarray(d, np.float64)[None, :]
    free = n - m
    possible = free >= d
    safe = np.where(possible, d, 0.0)
    # Paired so that each bracket is exactly 0 when m = 0.
    log_p = (gammaln(free + 1) - gammaln(n + 1)) + (
        gammaln(n - safe + 1) - gammaln(free - safe + 1)
    )
    return np.where(m == 0, 0.0, np.where(possible, log_p, -np.inf))


def p_no_match(m: npt.ArrayLike, n: npt.ArrayLike, d: npt.ArrayLike) -> FloatArray:
    """``C(n - m, D) / C(n, D)``: the chance a random database of ``D`` of a query's ``n``
    eligible others misses all ``m`` it matches (see :func:`log_p_no_match`)."""
    return np.exp(log_p_no_match(m, n, d))


def _resample_weights(weight: IntArray, resamples: int, seed: int) -> IntArray:
    """Bootstrap over uploads: how often each distinct row is drawn, ``(resamples, k)``."""
    rng = np.random.default_rng(seed)
    total = int(weight.sum())
    return rng.multinomial(total, weight / total, size=resamples)


def _interval(samples: FloatArray) -> FloatArray:
    """Percentile 95% interval along axis 0, shape ``(2, ...)`` (a resample without hashable
    uploads has no share among them and is left out)."""
    return np.nanpercentile(samples, [2.5, 97.5], axis=0)


def measured_curve(
    counts: MatchCounts,
    sizes: npt.ArrayLike | None = None,
    *,
    resamples: int = CURVE_RESAMPLES,
    seed: int = 0,
) -> dict[str, Any]:
    """The exact share of uploads flagged at each database size, with bootstrap intervals.

    Parameters
    ----------
    counts : MatchCounts
    sizes : int array, optional
        Database sizes, each at most ``counts.max_database``; default :func:`database_grid`.
    resamples, seed : int
        Bootstrap over uploads (query images), seeded.

    Returns
    -------
    dict
        ``database_size``, ``share`` (over all uploads) and ``ci95`` (pairs), the same for
        hashable uploads only (``share_hashable``, ``ci95_hashable``), and the upload counts.
    """
    if counts.n_uploads == 0:
        raise ValueError("no uploads to query")
    d = database_grid(counts.max_database) if sizes is None else np.asarray(sizes, np.int64)
    if len(d) and (d.min() < 1 or d.max() > counts.max_database):
        raise ValueError(
            f"measured database sizes must lie in [1, {counts.max_database}], got "
            f"[{d.min()}, {d.max()}]"
        )
    m, n, hashable, weight = _distinct(counts)
    flagged = -np.expm1(log_p_no_match(m, n, d))  # (rows, sizes); 0 where nothing matches
    w = _resample_weights(weight, resamples, seed)
    hits_b = w @ flagged
    with np.errstate(invalid="ignore", divide="ignore"):
        share = weight @ flagged / counts.n_uploads
        share_h = weight @ flagged / (weight @ hashable)
        share_h_b = hits_b / (w @ hashable)[:, None]
    return {
        "database_size": d.tolist(),
        "share": share.tolist(),
        "ci95": _interval(hits_b / counts.n_uploads).T.tolist(),
        "share_hashable": share_h.tolist(),
        "ci95_hashable": _interval(share_h_b).T.tolist(),
        "n_uploads": counts.n_uploads,
        "n_gated": counts.n_gated,
        "resamples": resamples,
    }


@dataclass(frozen=True)
class BetaBinomialFit:
    """Maximum-likelihood ``Beta(a, b)`` of per-image match probabilities."""

    a: float
    b: float
    converged: bool
    log_likelihood: float

    @property
    def degenerate(self) -> bool:
        """No usable fit: the optimiser failed, or the spread between images vanished
        (``a > MAX_SHAPE``; the optimum then sits at or runs towards the search bound)."""
        return not self.converged or self.a > MAX_SHAPE

    def share(self, sizes: npt.ArrayLike) -> FloatArray:
        """Share of query images with at least one match in a database of each size:
        ``1 - B(a, b + D) / B(a, b)`` (the beta mixture of ``1 - (1 - p_q)^D``)."""
        d = np.asarray(sizes, np.float64)
        share: FloatArray = -np.expm1(betaln(self.a, self.b + d) - betaln(self.a, self.b))
        return share


def _negative_log_likelihood(
    theta: FloatArray, m: FloatArray, n: FloatArray, w: FloatArray
) -> tuple[float, FloatArray]:
    """Beta-binomial ``-log L`` (binomial coefficients dropped) and its gradient in
    ``(log a, log b)``."""
    a, b = np.exp(theta)
    ll = w @ (betaln(m + a, n - m + b) - betaln(a, b))
    common = digamma(a + b) - digamma(n + a + b)
    da = w @ (digamma(m + a) - digamma(a) + common)
    db = w @ (digamma(n - m + b) - digamma(b) + common)
    return -float(ll), -np.array([da * a, db * b])


def fit_beta_binomial(
    matches: npt.ArrayLike,
    pool: npt.ArrayLike,
    weight: npt.ArrayLike | None = None,
    start: tuple[float, float] | None = None,
) -> BetaBinomialFit:
    """Fit ``m_q ~ BetaBinomial(n_q, a, b)`` by maximum likelihood (L-BFGS-B in log space).

    Parameters
    ----------
    matches, pool : int arrays, shape (k,)
        Matches and eligible others per query (``pool > 0``).
    weight : array, shape (k,), optional
        How many queries share each row (distinct rows, or bootstrap counts); default 1 each.
    start : (a, b), optional
        Starting point; default a moment-matched ``a = 0.5``.
    """
    m = np.asarray(matches, np.float64)
    n = np.asarray(pool, np.float64)
    w = np.ones_like(m) if weight is None else np.asarray(weight, np.float64)
    if start is None:
        # Clamped away from 0 and 1 (every pair matching): the log of the start stays finite.
        p = min(max(float(w @ m) / float(w @ n), 1e-12), 1.0 - 1e-12)
        start = (0.5, 0.5 * (1 - p) / p)
    x0 = np.clip(np.log(start), [lo for lo, _ in _LOG_BOUNDS], [hi for _, hi in _LOG_BOUNDS])
    from scipy.optimize import minimize  # about 0.4 s to import: only when a fit is needed

    res = minimize(
        _negative_log_likelihood,
        x0,
        args=(m, n, w),
        jac=True,
        method="L-BFGS-B",
        bounds=_LOG_BOUNDS,
    )
    a, b = np.exp(res.x)
    at_bound = any(
        math.isclose(x, lo) or math.isclose(x, hi)
        for x, (lo, hi) in zip(res.x, _LOG_BOUNDS, strict=True)
    )
    return BetaBinomialFit(float(a), float(b), bool(res.success) and not at_bound, -float(res.fun))


def _refits(
    matches: npt.ArrayLike,
    pool: npt.ArrayLike,
    weights: npt.ArrayLike,
    start: BetaBinomialFit,
    iterations: int = 40,
) -> tuple[FloatArray, FloatArray, npt.NDArray[np.bool_]]:
    """Refit the beta-binomial to every row of ``weights`` (bootstrap counts) at once.

    Damped Newton in ``(log a, log b)`` from the full-sample fit, all resamples vectorised (one
    scipy optimisation per resample costs ~20 ms; this costs about that for all of them).
    Returns ``a``, ``b`` and whether each resample converged.
    """
    m, n = np.asarray(matches, np.float64), np.asarray(pool, np.float64)
    weights = np.asarray(weights, np.float64)
    r = len(weights)
    theta = np.tile(np.log([start.a, start.b]), (r, 1))
    lo, hi = np.array(_LOG_BOUNDS).T

    def loglik(t: FloatArray) -> FloatArray:
        a, b = np.exp(t[:, :1]), np.exp(t[:, 1:])
        total: FloatArray = np.sum(weights * (betaln(m + a, n - m + b) - betaln(a, b)), axis=1)
        return total

    current = loglik(theta)
    done = np.zeros(r, bool)
    for _ in range(iterations):
        a, b = np.exp(theta[:, :1]), np.exp(theta[:, 1:])
        common, common1 = digamma(a + b) - digamma(n + a + b), polygamma(1, a + b)
        ga = np.sum(weights * (digamma(m + a) - digamma(a) + common), axis=1)
        gb = np.sum(weights * (digamma(n - m + b) - digamma(b) + common), axis=1)
        hab = np.sum(weights * (common1 - polygamma(1, n + a + b)), axis=1)
        haa = hab + np.sum(weights * (polygamma(1, m + a) - polygamma(1, a)), axis=1)
        hbb = hab + np.sum(weights * (polygamma(1, n - m + b) - polygamma(1, b)), axis=1)
        a, b = a[:, 0], b[:, 0]
        g = np.stack([a * ga, b * gb], axis=1)
        hxx, hyy, hxy = a * a * haa + a * ga, b * b * hbb + b * gb, a * b * hab
        det = hxx * hyy - hxy * hxy
        concave = (hxx < 0) & (det > 0)
        # Newton where the log-likelihood is concave, a small gradient step elsewhere.
        with np.errstate(divide="ignore", invalid="ignore"):
            newton = -np.stack([hyy * g[:, 0] - hxy * g[:, 1], hxx * g[:, 1] - hxy * g[:, 0]], 1)
            step = np.where(concave[:, None], newton / det[:, None], 1e-3 * g)
        step[done] = 0.0
        scale = np.ones(r)
        for _ in range(30):  # halve each step until the likelihood does not fall
            trial = np.clip(theta + scale[:, None] * step, lo, hi)
            value = loglik(trial)
            worse = ~(value >= current - 1e-9 * np.abs(current))
            if not worse.any():
                break
            scale[worse] /= 2
        theta, current = trial, np.where(worse, current, value)
        done |= np.max(np.abs(scale[:, None] * step), axis=1) < 1e-7
        if done.all():
            break
    return np.exp(theta[:, 0]), np.exp(theta[:, 1]), done


def images_needed(pair_fpr: Rate) -> int | None:
    """Images for about :data:`MIN_MATCHED` matched queries under all pairs: ``N`` images make
    ``~N^2 p`` matched queries at small ``p``, so ``N ~ sqrt(10 / p_hi)`` with ``p_hi`` the
    Clopper-Pearson upper bound of the pair FPR (``None`` when it is undefined)."""
    p_hi = pair_fpr.ci95[1]
    if math.isnan(p_hi) or p_hi <= 0:
        return None
    return math.ceil(math.sqrt(MIN_MATCHED / p_hi))


MODEL_LABEL = (
    "model-based: per-image beta-binomial fitted to the corpus's match counts, "
    "extrapolated in database size"
)


def model_curve(
    counts: MatchCounts,
    sizes: npt.ArrayLike,
    *,
    resamples: int = MODEL_RESAMPLES,
    seed: int = 0,
) -> dict[str, Any]:
    """Model-based share of uploads flagged at each database size, or why there is none.

    Returns
    -------
    dict
        ``status`` ``"ok"`` with the fit (``a``, ``b`` and their intervals), ``database_size``,
        ``share`` / ``ci95`` over all uploads (gated uploads are never flagged) and
        ``share_hashable`` / ``ci95_hashable``; or ``"unresolved"`` with its ``reason`` and the
        ``images_needed``. Always carries ``label``.
    """
    d = np.asarray(sizes, np.int64)
    fpr = counts.pair_fpr()
    out: dict[str, Any] = {"label": MODEL_LABEL, "n_matched": counts.n_matched}
    needed = images_needed(fpr)
    if counts.n_matched < MIN_MATCHED:
        return out | {
            "status": "unresolved",
            "reason": f"only {counts.n_matched} query images have a match; the model needs "
            f"{MIN_MATCHED}"
            + (f" (at least about {needed:,} images would give that)" if needed else ""),
            "images_needed": needed,
        }
    m, n, hashable, weight = _distinct(counts)
    live = n > 0
    fit = fit_beta_binomial(m[live], n[live], weight[live])
    if fit.degenerate:
        return out | {
            "status": "unresolved",
            "reason": f"the beta-binomial fit is degenerate (a = {fit.a:.3g}, b = {fit.b:.3g}): "
            "the match counts show no spread between images to extrapolate from",
            "images_needed": needed,
            "a": fit.a,
            "b": fit.b,
        }
    w = _resample_weights(weight, resamples, seed)
    a_b, b_b, converged = _refits(m[live], n[live], w[:, live], fit)
    shares_h = -np.expm1(
        betaln(a_b[:, None], b_b[:, None] + d[None, :]) - betaln(a_b, b_b)[:, None]
    )
    params = np.stack([a_b, b_b], axis=1)
    fraction = float(weight @ hashable) / counts.n_uploads
    fraction_b = (w @ hashable) / counts.n_uploads
    share_h = fit.share(d)
    return out | {
        "status": "ok",
        "a": fit.a,
        "b": fit.b,
        "ci95_a": _interval(params[:, 0]).tolist(),
        "ci95_b": _interval(params[:, 1]).tolist(),
        "database_size": d.tolist(),
        "share": (share_h * fraction).tolist(),
        "ci95": _interval(shares_h * fraction_b[:, None]).T.tolist(),
        "share_hashable": share_h.tolist(),
        "ci95_hashable": _interval(shares_h).T.tolist(),
        "resamples": resamples,
        "resamples_unconverged": int((~converged).sum()),
    }


def _independent(p: float, size: float) -> float:
    """``1 - (1 - p)^D``: the share flagged if every pair matched independently with ``p``."""
    return 1.0 if p >= 1 else float(-math.expm1(size * math.log1p(-p)))


def flagged_share(
    counts: MatchCounts,
    database_sizes: Sequence[float] = DEFAULT_DATABASE_SIZES,
    *,
    curve_resamples: int = CURVE_RESAMPLES,
    model_resamples: int = MODEL_RESAMPLES,
    seed: int = 0,
    queries: str = "all images",
) -> dict[str, Any]:
    """Everything a platform asks at one threshold: the flagged-share curve and the answer at
    each database size the user names.

    Returns
    -------
    dict
        ``curve``: points ``{database_size, share, ci95, kind}`` with ``kind`` ``"measured"`` (D up
        to the corpus, exact) or ``"model"`` (the beta-binomial over the same grid extended to
        the largest size asked, when the model resolves); ``model``: the fit or why it is
        unresolved; ``at``: per requested size the measured or model share (or "unresolved"),
        expected matches per upload ``p x D`` and ``p_upload_flagged_if_independent``, each with
        an interval from the pair FPR's Clopper-Pearson bounds; ``queries`` says which images
        were the uploads and the database (e.g. "held-out images").
    """
    # Long: the measured curve, the model curve and the answer at each size share their inputs
    # and are written in the order the section reads; pieces apart would pass them all around.
    sizes = [float(s) for s in database_sizes]
    if any(not math.isfinite(s) or s < 1 for s in sizes):
        raise ValueError(f"database sizes must be finite and >= 1, got {sizes}")
    fpr = counts.pair_fpr()
    top = counts.max_database
    measured = measured_curve(counts, resamples=curve_resamples, seed=seed)
    grid = database_grid(int(max([top, *sizes])))
    model_sizes = np.unique(np.concatenate([grid, np.round(sizes).astype(np.int64)]))
    model = model_curve(counts, model_sizes, resamples=model_resamples, seed=seed)
    curve = [
        {"database_size": d, "share": s, "ci95": ci, "kind": "measured"}
        for d, s, ci in zip(
            measured["database_size"], measured["share"], measured["ci95"], strict=True
        )
    ]
    if model["status"] == "ok":
        curve += [
            {"database_size": d, "share": s, "ci95": ci, "kind": "model"}
            for d, s, ci in zip(model["database_size"], model["share"], model["ci95"], strict=True)
            if d in grid
        ]
    at = []
    for size in sizes:
        entry: dict[str, Any] = {"database_size": size}
        if size <= top:
            exact = measured_curve(counts, [round(size)], resamples=curve_resamples, seed=seed)
            entry |= {
                "kind": "measured",
                "share": exact["share"][0],
                "ci95": exact["ci95"][0],
                "share_hashable": exact["share_hashable"][0],
                "ci95_hashable": exact["ci95_hashable"][0],
            }
        elif model["status"] == "ok":
            k = model["database_size"].index(round(size))
            entry |= {
                "kind": "model",
                "label": MODEL_LABEL,
                "share": model["share"][k],
                "ci95": model["ci95"][k],
                "share_hashable": model["share_hashable"][k],
                "ci95_hashable": model["ci95_hashable"][k],
            }
        else:
            entry |= {
                "kind": "unresolved",
                "reason": model["reason"],
                "images_needed": model["images_needed"],
            }
        if fpr.status == "ok":
            entry["expected_matches_per_upload"] = {
                "value": fpr.value * size,
                "ci95": [fpr.ci95[0] * size, fpr.ci95[1] * size],
            }
            entry["p_upload_flagged_if_independent"] = {
                "value": _independent(fpr.value, size),
                "ci95": [_independent(fpr.ci95[0], size), _independent(fpr.ci95[1], size)],
            }
        else:  # no pairs at all: nothing to scale
            entry["expected_matches_per_upload"] = entry["p_upload_flagged_if_independent"] = None
        at.append(entry)
    per_size = ("database_size", "share", "ci95", "share_hashable", "ci95_hashable")
    model_summary = {k: v for k, v in model.items() if k not in per_size}
    return {
        "queries": queries,
        "pair_fpr": fpr.to_dict(),
        "n_uploads": counts.n_uploads,
        "n_gated": counts.n_gated,
        "n_matched": counts.n_matched,
        "max_measured_database": top,
        "curve": curve,
        "model": model_summary,
        "at": at,
        "bootstrap": {
            "unit": "query image",
            "curve_resamples": curve_resamples,
            "model_resamples": model_resamples,
            "seed": seed,
        },
    }


def operational(
    answer: dict[str, Any],
    *,
    uploads_per_day: float | None = None,
    account_uploads: int | None = None,
    account_matches: int | None = None,
) -> dict[str, Any]:
    """What one entry of ``flagged_share(...)["at"]`` means for a platform.

    Flagged uploads per day come from the per-image flagged share (measured or modelled, with
    its interval and label), never from the independence formula; expected false matches per
    day are ``p x D x uploads``. The k-of-N account figure treats an account's uploads as
    independent draws of images, each flagged with the per-image share: an account of
    near-identical photos (one family of images) is flagged far more often.
    """
    size, kind = answer["database_size"], answer["kind"]
    out: dict[str, Any] = {
        "database_size": size,
        "uploads_per_day": uploads_per_day,
        "kind": kind,
        "label": answer.get("label", "measured on the corpus" if kind == "measured" else None),
        "p_upload_flagged_if_independent": answer["p_upload_flagged_if_independent"],
    }
    per_day = 1.0 if uploads_per_day is None else float(uploads_per_day)
    matches = answer["expected_matches_per_upload"]
    if uploads_per_day is not None and matches is not None:
        out["expected_matches_per_day"] = {
            "value": matches["value"] * per_day,
            "ci95": [c * per_day for c in matches["ci95"]],
        }
    rule = account_uploads is not None and account_matches is not None
    if rule:
        out["account_rule"] = {"uploads": account_uploads, "matches": account_matches}
    if kind == "unresolved":
        accounts = (
            f", nor how often an innocent account reaches {account_matches} matches in "
            f"{account_uploads} uploads"
            if rule
            else ""
        )
        out["verdict"] = (
            f"unresolved at {size:.3g} hashes: {answer['reason']}; the corpus cannot say what "
            f"share of innocent uploads would be flagged{accounts}"
        )
        if rule:
            out["p_account_flagged"] = None  # asked for, and unresolved with the share
        return out
    share, (low, high) = answer["share"], answer["ci95"]
    out["p_upload_flagged"] = {"value": share, "ci95": [low, high]}
    if uploads_per_day is not None:
        out["flagged_uploads_per_day"] = {
            "value": share * per_day,
            "ci95": [low * per_day, high * per_day],
        }
    if account_uploads is not None and account_matches is not None:
        from scipy.stats import binom  # about 0.7 s to import: only for this question

        def account(p: float) -> float:
            return float(binom.sf(account_matches - 1, account_uploads, p))

        out["p_account_flagged"] = {"value": account(share), "ci95": [account(low), account(high)]}
    where = "measured" if kind == "measured" else "model-based"
    volume = (
        f" ({share * per_day:.3g} per day of {per_day:.3g} uploads)"
        if uploads_per_day is not None
        else ""
    )
    if share >= 0.5:
        caveat = ": unusable at this scale"
    elif high >= 0.5:
        caveat = ": its interval reaches half of all uploads, so the corpus cannot vouch for it"
    else:
        caveat = ""
    odds = f"about 1 in {1 / share:,.0f}" if share > 0 else "none seen"
    out["verdict"] = (
        f"{share:.3g} of innocent uploads ({odds}) flagged against {size:.3g} hashes ({where}; "
        f"95% interval {low:.3g}-{high:.3g}){volume}{caveat}"
    )
    return out
