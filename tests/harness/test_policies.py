"""Matching policies: parsing and ids, metrics against their definitions, and whole runs."""

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from harness import results
from harness.algorithms import make_algorithm
from harness.algorithms.policies import ORIENTATIONS, Fusion, unletterbox_box
from harness.cli import main
from harness.core.errors import HarnessError, HashExcluded, SuiteError
from harness.kernels import all_pairs_histogram, pairwise
from harness.suite import load_suite, parse_suite
from tests.conftest import synthetic_image


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("pdq & phash", "pdq & phash"),
        ("phash&pdq", "pdq & phash"),
        ("phash | pdq", "pdq | phash"),
        ("phash + pdq", "pdq + phash"),
        ("pdq & phash & dhash", "dhash & pdq & phash"),
        ("(pdq & phash) & dhash", "dhash & pdq & phash"),
        ("(pdq | phash) & dhash", "dhash & (pdq | phash)"),
        ("dihedral( phash )", "dihedral(phash)"),
        ("dihedral(phash(hash_size=16))", "dihedral(phash(hash_size=16))"),
        ("gate(phash)", "gate(phash,quality=50)"),
        ("unletterbox(pdq, threshold=15)", "unletterbox(pdq)"),
        ("unletterbox(pdq, color='uniform')", "unletterbox(pdq,color='uniform')"),
        ("dihedral(pdq) | phash", "dihedral(pdq) | phash"),
        ("dihedral(pdq, orientations='pixels')", "dihedral(pdq)"),
        ("dihedral(pdq, orientations='native')", "pdq_dihedral"),
        ("dihedral(pdq(quality_gate=0),orientations='native')", "pdq_dihedral(quality_gate=0)"),
        ("phash<=10 | pdq <= 31", "pdq<=31 | phash<=10"),
        ("pdq<=31 & phash<=10 & dhash<=9", "dhash<=9 & pdq<=31 & phash<=10"),
        ("sum(phash, pdq, limits=(10, 31))", "pdq<=31 + phash<=10"),
        ("(pdq<=31 | dhash<=8)<=40 & phash<=10", "(dhash<=8 | pdq<=31)<=40 & phash<=10"),
        ("phash(hash_size=16)<=40 + pdq<=31", "pdq<=31 + phash(hash_size=16)<=40"),
    ],
)
def test_policy_ids_are_canonical_and_round_trip(text, canonical):
    algo = make_algorithm(text)
    assert algo.id == canonical
    assert make_algorithm(algo.id) == algo


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("pdq - phash", "Cannot parse"),
        ("pdq &", "Cannot parse"),
        ("sum(pdq)", "fuses two or more"),
        ("dihedral(pdq, phash)", "takes one algorithm"),
        ("dihedral(pdq, angle=3)", "has no parameter 'angle'"),
        ("gate(phash, quality=101)", "quality"),
        ("unletterbox(pdq, color='red')", "color"),
        ("dihedral(nohash)", "Unknown algorithm 'nohash'"),
        ("spin(pdq)", "Unknown policy 'spin'"),
        ("dihedral(phash, orientations='native')", "phash derives no orientations of its own"),
        ("dihedral(pdq, orientations='dct')", "orientations"),
        ("phash<=10", "on the parts of a fusion"),
        ("pdq<=31 & phash", "every part of a fusion its threshold"),
        ("pdq<=257 | phash<=10", r"threshold.*\[0, 256\]"),
        ("pdq<=31 | phash<=65", r"threshold.*\[0, 64\]"),
        ("sum(pdq, phash, limits=(31,))", "one threshold per part"),
        # the shape: where it is wrong and what to write
        ("(pdq & phash", r"'\(' at character 1 is never closed: add a '\)'"),
        ("dihedral(phash", r"'\(' at character 9 is never closed"),
        ("pdq & phash)", r"'\)' at character 12 closes no '\('"),
        ("pdq &", "'&' at character 5 has no part after it"),
        ("& pdq", "'&' at character 1 has no part before it"),
        ("pdq || phash", "'||' is not an operator: write a single '|'"),
        ("pdq & (phash |) ", "'|' at character 14 has no part after it"),
        ("()", r"'\(\)' at character 1 holds nothing"),
        ("pdq phash", "follows a part without an operator: join parts with &, | or \\+"),
        ("pdq & phash | dhash", r"mixed without parentheses; add them.*'\(pdq & phash\) \| dhash'"),
        ("pdq | phash + dhash", "'\\|' and '\\+' are mixed without parentheses"),
        ("pdq<=-1 | phash<=10", "'<=' takes a whole number of levels from 0 up.*got '-1'"),
        ("pdq<=abc | phash<=10", "got 'abc'"),
        ("pdq<=31.5 | phash<=10", "got '31.5'"),
        ("pdq<=31<=4 | phash<=10", "one threshold"),
        ("pdq<=300", r"\[thresholds\] \(\"pdq\" = \[N\], N from 0 to 256\) or threshold --at"),
        ("gate(phash, quality=)", "quality= has no value"),
        ("", "it is empty"),
        # a policy without the algorithm it works on
        ("unletterbox()", r"policy around an algorithm: .* e.g. unletterbox\(phash\)"),
        ("dihedral", r"e.g. dihedral\(phash\)"),
        ("gate", r"e.g. gate\(phash,quality=50\)"),
        # degenerate policies
        ("pdq & pdq", "pdq is fused with itself in 'pdq & pdq': a fusion's parts must differ"),
        ("pdq<=31 | pdq<=40", "fused with itself"),
        ("(pdq & phash) | (phash & pdq)", "fused with itself"),
        ("dihedral(dihedral(phash))", r"turns what is already turned.*write dihedral\(phash\)"),
        ("dihedral(pdq_dihedral)", "turns what is already turned"),
        ("dihedral(unletterbox(dihedral(phash)))", r"write unletterbox\(dihedral\(phash\)\)"),
        ("dihedral(pdq & dihedral(phash))", "turns what is already turned"),
        ("gate(gate(phash, quality=50), quality=60)", "gates what is already gated"),
        ("unletterbox(unletterbox(pdq))", r"strips borders already stripped.*write unletterbox"),
        # a parameter twice, by position, a thresholded group, a pasted look-alike
        (
            "phash(hash_size=8, hash_size=16)",
            "'hash_size' is given twice; give each parameter once",
        ),
        (
            "dihedral(phash, orientations='all', orientations='all')",
            "'orientations' is given twice",
        ),
        ("phash(8)", r"phash's parameters are named, not positional: write phash\(hash_size=8\)"),
        ("dihedral(dhash(8))", r"write dhash\(hash_size=8\)"),
        ("spin(pdq, phash)", "Known policies: and, dihedral"),
        (
            "(pdq<=31 | phash<=10) & dhash<=5",
            r"the group 'pdq<=31 \| phash<=10' has thresholds inside but none of its own.*"
            r"'\(pdq<=31 & dhash<=5\) \| \(phash<=10 & dhash<=5\)'",
        ),
        ("pdq\u2039=31 | phash<=10", r"'\u2039' \(U\+2039, not plain ASCII\) at character 4"),
        # too big to be a design: refused in one line, never a recursion error
        (" & ".join(["phash"] * 500), "more than 16 parts in one fusion"),
        (" | ".join(f"phash(hash_size={n})" for n in range(2, 20)), "more than 16 parts"),
        ("(" * 1000 + "pdq" + ")" * 1000, "nested more than 8 levels deep"),
        ("dihedral(" * 300 + "phash" + ")" * 300, "nested more than 8 levels deep"),
    ],
)
def test_bad_policies_are_refused_with_a_reason(text, message):
    with pytest.raises(HarnessError, match=message) as caught:
        make_algorithm(text)
    assert "\n" not in str(caught.value)
    assert len(str(caught.value)) < 400


def test_a_refusal_quotes_a_short_excerpt_of_a_long_expression(capsys):
    for text in ("x" * 30000, "pdq & " + "y" * 20000, "phash(" + "a=1," * 5000 + ")"):
        command = ["threshold", "--algorithm", text, "--at", "3", "--quiet"]
        assert main(command) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1
        assert len(err) < 400
        assert " ... " in err


def test_part_thresholds_run_from_0_like_a_suites_thresholds():
    """``phash<=0``: equal pHashes only, exactly as ``[thresholds] phash = [0]``."""
    policy = make_algorithm("pdq<=31 | phash<=0")
    assert policy.id == "pdq<=31 | phash<=0"
    pdq, phash = make_algorithm("pdq"), make_algorithm("phash")
    rows = _rows(policy, 40, seed=3)
    rows[:, -2:] = 1  # both parts usable
    rows[1, pdq.n_bytes : pdq.n_bytes + phash.n_bytes] = rows[0, pdq.n_bytes : -2]  # equal pHash
    d = policy.metric()(rows, rows)
    d_pdq = pairwise(rows[:, : pdq.n_bytes], rows[:, : pdq.n_bytes])
    d_phash = pairwise(rows[:, pdq.n_bytes : -2], rows[:, pdq.n_bytes : -2])
    t = policy.default_threshold().bits
    np.testing.assert_array_equal(d <= t, (d_pdq <= 31) | (d_phash == 0))
    assert (d_phash == 0).sum() > len(rows)  # the equal pair is in there


def test_a_long_flat_policy_is_one_line_through_the_cli(tmp_path, capsys):
    suite = tmp_path / "long.toml"
    chain = " & ".join(["phash"] * 500)
    suite.write_text(f'algorithms = ["{chain}"]\ntransforms = ["jpeg"]\n')
    assert main(["validate", str(suite)]) == 2
    err = capsys.readouterr().err
    assert "more than 16 parts in one fusion" in err
    assert "Recursion" not in err


def test_duplicate_entries_are_quoted_as_written():
    with pytest.raises(
        SuiteError,
        match=r"algorithms\[1\] 'phash & pdq': duplicates "
        r"algorithms\[0\] 'pdq & phash' \(both are 'pdq & phash'\)",
    ):
        parse_suite({"algorithms": ["pdq & phash", "phash & pdq"], "transforms": ["jpeg"]})


def _rows(algo, n, seed):
    """Random packed rows of ``algo``'s layout (every byte pattern is a possible hash)."""
    return np.random.default_rng(seed).integers(0, 256, (n, algo.n_bytes), dtype=np.uint8)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 6), m=st.integers(1, 6))
def test_fusion_levels_are_max_min_and_sum_of_the_parts_on_the_grid(seed, n, m):
    pdq = make_algorithm("pdq")
    layout = make_algorithm("pdq & phash")
    q, r = _rows(layout, n, seed), _rows(layout, m, seed + 1)
    d_pdq = pairwise(q[:, : pdq.n_bytes], r[:, : pdq.n_bytes])
    d_phash = pairwise(q[:, pdq.n_bytes :], r[:, pdq.n_bytes :]) * 4  # 0..64 -> 0..256
    for text, want in [
        ("pdq & phash", np.maximum(d_pdq, d_phash)),
        ("pdq | phash", np.minimum(d_pdq, d_phash)),
        ("pdq + phash", d_pdq + d_phash),
    ]:
        algo = make_algorithm(text)
        flags = (np.ones((len(q), 2), np.uint8), np.ones((len(r), 2), np.uint8))
        if algo.partial:  # OR rows end with each part's usable flag
            got = algo.metric()(np.hstack([q, flags[0]]), np.hstack([r, flags[1]]))
        else:
            got = algo.metric()(q, r)
        assert got.dtype == np.int64
        assert np.array_equal(got, want), text
        assert got.max() <= algo.n_levels
        # AND at t is "every part within its share of t"; OR at t "some part within it"
        t = algo.default_threshold().bits
        if text == "pdq & phash":
            assert np.array_equal(got <= t, (d_pdq <= t) & (d_phash <= t))


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    t_pdq=st.integers(1, 256),
    t_other=st.integers(1, 256),
    other=st.sampled_from(["phash", "phash(hash_size=16)", "dhash"]),
)
def test_per_part_thresholds_decide_exactly_the_per_part_rule(seed, t_pdq, t_other, other):
    """``pdq<=a & h<=b`` at its default threshold is PDQ <= a and h <= b, exactly, also when
    the grid is binned; OR is "either"; every threshold is monotone in every part."""
    t_other = min(t_other, make_algorithm(other).n_levels)
    layout = make_algorithm(f"pdq<=31 & {other}<=1")  # parts in canonical (sorted) order
    q, r = _rows(layout, 5, seed), _rows(layout, 6, seed + 1)
    d, start = {}, 0
    for p in layout.parts:
        d[p.id] = pairwise(q[:, start : start + p.n_bytes], r[:, start : start + p.n_bytes])
        start += p.n_bytes
    within = (d["pdq"] <= t_pdq, d[other] <= t_other)
    flags = (np.ones((5, 2), np.uint8), np.ones((6, 2), np.uint8))
    for op, rule in [("&", within[0] & within[1]), ("|", within[0] | within[1])]:
        algo = make_algorithm(f"pdq<={t_pdq} {op} {other}<={t_other}")
        assert algo.grid <= 4096
        rows = (q, r) if not algo.partial else (np.hstack([q, flags[0]]), np.hstack([r, flags[1]]))
        got = algo.metric()(*rows)
        assert got.min() >= 0
        assert got.max() <= algo.n_levels
        assert np.array_equal(got <= algo.default_threshold().bits, rule)
        # every threshold moves every part's limit together, by its own scale
        on_grid = [algo.on_grid(k, d[p.id]) for k, p in enumerate(algo.parts)]
        want = np.maximum(*on_grid) if op == "&" else np.minimum(*on_grid)
        assert np.array_equal(got, want)


def test_per_part_thresholds_record_the_grid_and_the_binning():
    exact = make_algorithm("pdq<=31 & phash<=10")
    assert (exact.grid, exact.exact, exact.default_threshold().bits) == (2560, True, 310)
    assert "pdq x10, phash x31; 310 on it is pdq <= 31, phash <= 10" in exact.distance
    assert exact.level_unit == "levels of 2560"
    binned = make_algorithm("pdq<=31 & phash(hash_size=16)<=41")  # 256 x 41 > 4096
    assert (binned.exact, binned.default_threshold().bits) == (False, 41)
    assert "divided by 31 and rounded up" in binned.distance
    assert make_algorithm("pdq<=31 + phash<=10").default_threshold().bits == 620


def test_the_native_dihedral_policy_is_pdq_dihedral_byte_for_byte():
    """``pdq_dihedral`` is ``dihedral(pdq,orientations='native')``: pdqhash's own 8 hashes,
    one id and the record the algorithm had before it became a policy."""
    import pdqhash

    native = make_algorithm("dihedral(pdq(quality_gate=0),orientations='native')")
    assert native == make_algorithm("pdq_dihedral(quality_gate=0)")
    assert native.to_dict() == {
        "name": "pdq_dihedral",
        "version": 1,
        "params": {"quality_gate": 0},
    }
    assert native.fingerprint()["id"] == "pdq_dihedral(quality_gate=0)"
    assert set(native.fingerprint()) == {"id", "version", "libraries"}
    image = synthetic_image(120, 90, seed=5)
    vectors, _ = pdqhash.compute_dihedral(np.asarray(image.convert("RGB")))
    want = np.packbits(np.concatenate([np.asarray(v, bool) for v in vectors]))
    assert np.array_equal(native.hash(image), want)
    pixels = make_algorithm("dihedral(pdq(quality_gate=0))")
    assert pixels.id == "dihedral(pdq(quality_gate=0))"
    assert np.array_equal(pixels.hash(image)[:32], want[:32])  # the upright hash is PDQ's
    with pytest.raises(SuiteError, match="derives no orientations"):
        parse_suite(
            {"algorithms": ["dihedral(dhash,orientations='native')"], "transforms": ["identity"]}
        )


def test_fusion_grid_is_the_lcm_when_small_and_binned_otherwise():
    exact = make_algorithm("pdq & phash")
    assert (exact.grid, exact.exact) == (256, True)
    assert "pdq x1, phash x4" in exact.distance
    binned = make_algorithm("cv_color_moment_hash & pdq")  # 0..1000 and 0..256: lcm 32000
    assert isinstance(binned, Fusion)
    assert (binned.grid, binned.exact) == (1000, False)
    assert "binned to 0..1000, rounded up" in binned.distance
    images = [synthetic_image(90, 70, seed=s) for s in range(4)]
    rows = np.stack([binned.hash(im) for im in images])
    moments, pdq = binned.parts
    d_moments = moments.metric()(*(np.stack([moments.hash(im) for im in images]),) * 2)
    d_pdq = pairwise(*(np.stack([pdq.hash(im) for im in images]),) * 2)
    want = np.maximum(d_moments, -(-d_pdq * 1000 // 256))  # PDQ rounded up onto 0..1000
    assert np.array_equal(binned.metric()(rows, rows), want)


def test_dihedral_matches_every_lossless_orientation_exactly():
    image = synthetic_image(96, 64, seed=3)
    for text in ("dihedral(phash)", "dihedral(dhash)", "dihedral(pdq(quality_gate=0))"):
        algo = make_algorithm(text)
        reference = algo.hash(image)[None]
        for t in ORIENTATIONS:
            upload = algo.hash(image if t is None else image.transpose(t))[None]
            assert algo.metric()(upload, reference)[0, 0] == 0, (text, t)
    plain = make_algorithm("phash")
    turned = plain.hash(image.transpose(Image.Transpose.ROTATE_90))[None]
    assert pairwise(turned, plain.hash(image)[None])[0, 0] > 10  # plain phash misses it


def test_dihedral_pdq_equals_the_builtin_pdq_dihedral_where_pdq_derives_it_exactly():
    """PDQ's own dihedral hashes come from the DCT; on 64 x 64 inputs that derivation is
    exact, so the pixel-based policy and the old pdq_dihedral agree distance for distance."""
    images = [synthetic_image(64, 64, seed=s) for s in range(4)]
    policy = make_algorithm("dihedral(pdq(quality_gate=0))")
    builtin = make_algorithm("pdq_dihedral(quality_gate=0)")
    a = np.stack([policy.hash(im) for im in images])
    b = np.stack([builtin.hash(im) for im in images])
    assert np.array_equal(a[:, :32], b[:, :32])  # the upright hash is plain PDQ in both
    assert np.array_equal(policy.metric()(a, a), builtin.metric()(b, b))


def test_dihedral_all_pairs_counts_each_pair_once_with_the_eight_chances():
    algo = make_algorithm("dihedral(phash)")
    rows = _rows(algo, 9, 5)
    hist = all_pairs_histogram(rows, algo.n_levels, metric=algo.metric())
    assert hist.sum() == 9 * 8 // 2
    # each pair's level is the minimum over 8 Hamming distances: never above the plain one
    plain = pairwise(rows[:, :8], rows[:, :8])
    d = algo.metric()(rows, rows)
    assert (d <= plain).all()


@pytest.mark.parametrize(
    ("fill", "color", "stripped"),
    [
        ((0, 0, 0), "black", True),
        ((10, 12, 9), "black", True),
        ((255, 255, 255), "black", False),
        ((255, 255, 255), "uniform", True),
        ((90, 140, 200), "uniform", True),
    ],
)
def test_unletterbox_finds_the_picture_inside_uniform_borders(fill, color, stripped):
    picture = np.asarray(synthetic_image(40, 30, seed=1)).copy()
    picture[picture.sum(axis=2) < 60] = 60  # no near-black content lines of its own
    framed = np.empty((30 + 7 + 4, 40 + 5 + 9, 3), np.uint8)
    framed[:] = fill
    framed[7:37, 5:45] = picture
    box = unletterbox_box(framed, 15, color)
    assert box == ((5, 7, 45, 37) if stripped else (0, 0, 54, 41))
    flat = np.full((20, 20, 3), 0, np.uint8)
    assert unletterbox_box(flat, 15, color) == (0, 0, 20, 20)  # all border: left whole
    algo = make_algorithm(f"unletterbox(pdq,color={color!r})")
    if stripped:
        inner = make_algorithm("pdq").hash(Image.fromarray(picture))
        assert np.array_equal(algo.hash(Image.fromarray(framed)), inner)


def test_gate_discards_flat_images_and_keeps_detailed_ones():
    gate = make_algorithm("gate(phash,quality=50)")
    with pytest.raises(HashExcluded, match="below the gate 50"):
        gate.hash(Image.new("RGB", (64, 64), (120, 120, 120)))
    detailed = synthetic_image(96, 64, seed=2)
    assert np.array_equal(gate.hash(detailed), make_algorithm("phash").hash(detailed))


def test_thresholds_name_policies_in_any_spelling():
    suite = parse_suite(
        {
            "algorithms": ["pdq & phash", "dihedral(phash)"],
            "transforms": ["identity"],
            "thresholds": {"phash&pdq": [48], "dihedral(phash)": [12]},
        }
    )
    assert suite.thresholds == {"pdq & phash": (48,), "dihedral(phash)": (12,)}
    with pytest.raises(SuiteError, match=r"threshold.*0\.\.256|256"):
        parse_suite(
            {
                "algorithms": ["pdq & phash"],
                "transforms": ["identity"],
                "thresholds": {"pdq & phash": [300]},
            }
        )


def test_the_bundled_policies_suite_names_every_policy_kind():
    suite = load_suite("policies")
    ids = [a.id for a in suite.algorithms]
    for wanted in ("pdq", "phash", "pdq & phash", "pdq | phash", "dihedral(phash)"):
        assert wanted in ids
    assert "rotate90(k=1)" in [c.id for c in suite.transforms]


POLICY_SUITE = """
name = "policies-small"
version = 1
dataset = "skimage"
algorithms = [
  "pdq", "phash", "pdq & phash", "pdq | phash", "pdq + phash", "dihedral(phash)",
  "unletterbox(pdq)", "gate(phash,quality=50)", "phash<=10 | pdq<=31",
]
transforms = ["identity", "rotate90(k=1)", "pad(fraction=0.1)", "crop(keep_area=0.9)"]
target_fprs = [1e-2]
bootstrap_resamples = 50
"""


@pytest.mark.slow
def test_policies_run_threshold_and_check_through_the_cli(tmp_path, capsys):
    suite = tmp_path / "policies.toml"
    suite.write_text(POLICY_SUITE)
    out = tmp_path / "out"
    assert main(["run", "--suite", str(suite), "--out", str(out), "--quiet"]) == 0
    result = results.to_builtins(results.load(out / "results.json"))
    ids = [a["id"] for a in result["algorithms"]]
    assert ids == [
        "pdq",
        "phash",
        "pdq & phash",
        "pdq | phash",
        "pdq + phash",
        "dihedral(phash)",
        "unletterbox(pdq)",
        "gate(phash,quality=50)",
        "pdq<=31 | phash<=10",
    ]

    def cell(algorithm, transform):
        return next(
            c
            for c in result["cells"]
            if c["algorithm"] == algorithm and c["transform"] == transform
        )

    def tpr(algorithm, transform):
        return next(m for m in cell(algorithm, transform)["metrics"] if m["name"] == "tpr")

    # Per-part thresholds: the OR finds every cropped copy either part finds alone (the shared
    # threshold of "pdq | phash" holds pHash to 7 bits and finds fewer than pHash alone).
    crop = "crop(keep_area=0.9)"
    missed = {a: {m["image"] for m in cell(a, crop)["misses"]} for a in ("pdq", "phash")}
    either = {m["image"] for m in cell("pdq<=31 | phash<=10", crop)["misses"]}
    assert either <= missed["pdq"] & missed["phash"]
    assert tpr("pdq<=31 | phash<=10", crop)["k"] >= max(tpr(a, crop)["k"] for a in missed)
    assert tpr("pdq | phash", crop)["k"] < tpr("phash", crop)["k"]

    turned_plain, turned_dihedral = (
        tpr("phash", "rotate90(k=1)"),
        tpr("dihedral(phash)", "rotate90(k=1)"),
    )
    assert turned_plain["k"] == 0
    assert turned_dihedral["k"] == turned_dihedral["n"] > 10
    padded = tpr("pdq", "pad(fraction=0.1)"), tpr("unletterbox(pdq)", "pad(fraction=0.1)")
    assert padded[1]["k"] == padded[1]["n"] > padded[0]["k"]

    all_pairs = {
        c["algorithm"]: c for c in result["collisions"] if c["protocol"] == "originals_all_pairs"
    }
    # Both FPRs over every pair of distinct originals, with their counts and intervals.
    for algo in ("phash", "dihedral(phash)"):
        fpr = all_pairs[algo]["metrics"][0]
        assert fpr["n"] == all_pairs[algo]["n_pairs"] == 17 * 16 // 2
        assert fpr["ci95"][1] > 0
    assert all_pairs["dihedral(phash)"]["summary"]["mean"] < all_pairs["phash"]["summary"]["mean"]

    leaderboard = {row["algorithm"]: row for row in result["leaderboard"]["rows"]}
    assert set(leaderboard) == set(ids)
    report = (out / "report.md").read_text()
    assert "| `dihedral(phash)` |" in report
    assert "| `pdq \\| phash` |" in report

    found = out / "results.json"
    threshold = ["threshold", "--results", str(found), "--algorithm", "pdq&phash", "--at", "40"]
    assert main(threshold) == 0
    assert "pdq & phash" in capsys.readouterr().out
    baseline = tmp_path / "baseline.json"
    assert main(["baseline", "create", "--results", str(found), "--out", str(baseline)]) == 0
    assert main(["check", "--baseline", str(baseline), str(found)]) == 0
    compared = tmp_path / "compare.md"
    compare = ["compare", str(found), "--algorithms", "phash", "dihedral(phash)"]
    assert main([*compare, "--out", str(compared)]) == 0
    assert "dihedral(phash)" in compared.read_text()
    fused = json.loads(found.read_text())["algorithms"][2]
    assert (
        fused["distance"] == "maximum of the parts' distances on a 0..256 grid (pdq x1, phash x4)"
    )


ASYMMETRIC_SUITE = """
name = "asymmetric-pairs"
version = 1
dataset = "skimage"
algorithms = ["dihedral(phash)"]
transforms = ["identity", "rotate90(k=1)"]
target_fprs = [1e-2]
bootstrap_resamples = 20
"""


def test_an_asymmetric_policy_counts_each_pair_of_images_once_everywhere(tmp_path, capsys):
    """dihedral(phash) measures a pair differently from each side: every negative count
    (collisions, given thresholds, calibration, held-out, `threshold` from hashes and from the
    run) is the n(n-1)/2 pairs of its images, not a rounding of both directions' halves."""
    suite = tmp_path / "asymmetric.toml"
    suite.write_text(ASYMMETRIC_SUITE)
    out = tmp_path / "out"
    assert main(["run", "--suite", str(suite), "--out", str(out), "--quiet"]) == 0
    result = json.loads((out / "results.json").read_text())

    def pairs(images):
        return images * (images - 1) // 2

    collisions = next(c for c in result["collisions"] if c["protocol"] == "originals_all_pairs")
    n = collisions["n_images"]
    assert collisions["n_pairs"] == collisions["metrics"][0]["n"] == pairs(n) == 136
    (recommendations,) = result["recommendations"]
    assert [f["fpr"]["n"] for f in recommendations["fixed"]] == [pairs(n)]
    target = recommendations["targets"][0]
    for part in ("calibration", "held_out"):
        images = target[part]["images"]
        assert target[part]["negatives"] == target[part]["fpr"]["n"] == pairs(images)
    assert target["calibration"]["images"] + target["held_out"]["images"] == n
    for source in (["--suite", str(suite)], ["--results", str(out / "results.json")]):
        command = ["threshold", *source, "--algorithm", "dihedral(phash)", "--at", "20"]
        assert main([*command, "--json", "--quiet"]) == 0
        answer = json.loads(capsys.readouterr().out)
        assert answer["negatives"] == answer["fpr"]["n"] == pairs(answer["images"]) == pairs(n)


def test_or_decides_on_the_parts_left_when_one_discards_the_image():
    flat = Image.new("RGB", (64, 64), (120, 120, 120))  # PDQ quality 0: pdq discards it
    either, both = make_algorithm("pdq | phash"), make_algorithm("pdq & phash")
    with pytest.raises(HashExcluded, match="below the gate"):
        both.hash(flat)
    detailed = synthetic_image(64, 64, seed=4)
    rows = np.stack([either.hash(flat), either.hash(detailed)])
    assert rows[:, -2:].tolist() == [[0, 1], [1, 1]]  # usable flags: pdq, phash
    d = either.metric()(rows, rows)
    phash = make_algorithm("phash")
    plain = pairwise(*(np.stack([phash.hash(flat), phash.hash(detailed)]),) * 2) * 4
    assert d[0, 0] == 0  # the flat image still matches itself through phash
    assert d[0, 1] == min(plain[0, 1], 256)  # pdq cannot vote: phash alone decides
    with pytest.raises(HashExcluded, match="pdq"):
        make_algorithm("pdq | gate(phash,quality=50)").hash(flat)


def test_list_algorithms_shows_the_policies(capsys):
    assert main(["list", "algorithms"]) == 0
    out = capsys.readouterr().out
    for example in ("pdq & phash", "pdq | phash", "pdq + phash", "dihedral(phash)", "gate(phash)"):
        assert f"  {example}: " in out


@pytest.mark.parametrize(
    ("text", "bits", "means", "limits"),
    [
        ("pdq & phash", 40, "at 40 of 0..256, pdq <= 40 and phash <= 10", (40, 10)),
        ("pdq | phash", 31, "at 31 of 0..256, pdq <= 31 or phash <= 7", (31, 7)),
        ("pdq + phash", 71, "at 71 of 0..512, pdq x1 + phash x4 <= 71", None),
    ],
)
def test_a_shared_default_threshold_says_what_it_asks_of_each_part(text, bits, means, limits):
    policy = make_algorithm(text)
    default = policy.default_threshold()
    assert default.bits == bits
    assert default.source.endswith(means)
    if limits is None:
        return
    pdq = make_algorithm("pdq").n_bytes
    rng = np.random.default_rng(5)
    bits_of = np.unpackbits(np.tile(_rows(policy, 1, seed=5), (60, 1)), axis=1)
    for row, (a, b) in zip(bits_of, rng.integers((0, 0), (30, 8), size=(60, 2)), strict=True):
        row[rng.choice(8 * pdq, a, replace=False)] ^= 1  # a few bits of each part flipped:
        row[8 * pdq + rng.choice(64, b, replace=False)] ^= 1  # pairs near either limit
    rows = np.packbits(bits_of, axis=1)
    if policy.partial:
        rows[:, -2:] = 1  # both parts usable
    d_pdq = pairwise(rows[:, :pdq], rows[:, :pdq])
    d_phash = pairwise(rows[:, pdq : pdq + 8], rows[:, pdq : pdq + 8])
    either = np.logical_and if text == "pdq & phash" else np.logical_or
    matched = policy.metric()(rows, rows) <= bits
    np.testing.assert_array_equal(matched, either(d_pdq <= limits[0], d_phash <= limits[1]))
    assert 0.05 < matched.mean() < 0.95  # both answers are well represented
