import pytest

from harness.core.errors import SuiteError
from harness.suite import DEFAULT_SUITE, load_suite, parse_suite

MINIMAL = {"algorithms": ["phash"], "transforms": ["identity"]}


def test_default_suite_is_valid():
    suite = load_suite(DEFAULT_SUITE)
    assert suite.name == "default"
    assert suite.thresholds["pdq"] == (31,)
    assert len(suite.config_sha256) == 64
    assert suite.transforms[0].id == "identity"


def test_defaults_fill_in():
    suite = parse_suite(MINIMAL)
    assert suite.dataset == "skimage"
    assert suite.seed == 0
    assert suite.thresholds == {"phash": (10,)}
    assert suite.target_fprs == (1e-3, 1e-6)
    assert suite.calibration_fraction == 0.5
    assert suite.near_duplicates is None


def test_statistics_keys():
    suite = parse_suite(
        {
            **MINIMAL,
            "target_fprs": [1e-6, 1e-2, 1e-6],
            "near_duplicates": {"algorithm": "phash", "max_distance": 4},
        }
    )
    assert suite.target_fprs == (1e-2, 1e-6)  # largest first, duplicates dropped
    assert suite.near_duplicates.algorithm == "phash"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({**MINIMAL, "algoritms": []}, "algoritms: unknown key. Did you mean 'algorithms'?"),
        ({"transforms": ["identity"]}, "algorithms: missing"),
        ({**MINIMAL, "transforms": []}, "transforms: is empty"),
        ({**MINIMAL, "transforms": "identity"}, "transforms: must be a list of strings"),
        ({**MINIMAL, "algorithms": ["phahs"]}, "Did you mean 'phash'"),
        ({**MINIMAL, "transforms": ["crop", "crop(keep_area=0.81)"]}, "duplicates transforms[0]"),
        ({**MINIMAL, "algorithms": ["phash", "phash(hash_size=8)"]}, "duplicates algorithms[0]"),
        ({**MINIMAL, "thresholds": {"phash": [65]}}, "must be an int in [0, 64]. Got 65"),
        ({**MINIMAL, "thresholds": {"pdq": [31]}}, "thresholds.pdq: names no algorithm"),
        ({**MINIMAL, "thresholds": {"phash": []}}, "non-empty list"),
        ({**MINIMAL, "seed": -1}, "'seed' parameter of the suite must be an int"),
        ({**MINIMAL, "version": "1"}, "'version' parameter of the suite must be an int"),
        ({**MINIMAL, "max_failure_rate": 2}, "'max_failure_rate' parameter"),
        ({**MINIMAL, "target_fprs": [0]}, "'target_fprs[0]' parameter of the suite"),
        ({**MINIMAL, "target_fprs": []}, "target_fprs: must be a non-empty list"),
        ({**MINIMAL, "base_rates": [1.5]}, "'base_rates[0]' parameter"),
        ({**MINIMAL, "calibration_fraction": 1.0}, "'calibration_fraction' parameter"),
        ({**MINIMAL, "bootstrap_resamples": -5}, "'bootstrap_resamples' parameter"),
        ({**MINIMAL, "near_duplicates": {"algorithm": "pdq", "max_distance": 3}}, "must name one"),
        (
            {**MINIMAL, "near_duplicates": {"algorithm": "phash"}},
            "needs algorithm and max_distance",
        ),
        (
            {**MINIMAL, "near_duplicates": {"algorithm": "phash", "max_distance": 99}},
            "'max_distance' parameter of near_duplicates must be an int in [0, 64]",
        ),
    ],
)
def test_invalid_suites_are_refused_with_a_fix(raw, message):
    with pytest.raises(SuiteError) as info:
        parse_suite(raw)
    assert message in str(info.value)


def test_every_problem_is_reported_at_once():
    with pytest.raises(SuiteError) as info:
        parse_suite({"algorithms": ["nope"], "transforms": ["jpeg(quality=0)"], "sed": 1})
    assert "(3 problems)" in str(info.value)


def test_ambiguous_threshold_key_needs_the_full_id():
    raw = {"algorithms": ["phash(hash_size=12)", "phash(hash_size=16)"], "transforms": ["identity"]}
    with pytest.raises(SuiteError, match="matches several algorithms"):
        parse_suite({**raw, "thresholds": {"phash": [10]}})
    suite = parse_suite({**raw, "thresholds": {"phash(hash_size=16)": [40]}})
    assert suite.thresholds["phash(hash_size=16)"] == (40,)
    # An exact id wins over a bare name: "phash" is the default-size one here.
    suite = parse_suite(
        {
            "algorithms": ["phash", "phash(hash_size=16)"],
            "transforms": ["identity"],
            "thresholds": {"phash": [12]},
        }
    )
    assert suite.thresholds == {"phash": (12,), "phash(hash_size=16)": (26,)}


def test_file_errors(tmp_path):
    with pytest.raises(SuiteError, match="Cannot read suite file"):
        load_suite(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("algorithms = [")
    with pytest.raises(SuiteError, match="not valid TOML"):
        load_suite(bad)


def test_shipped_suites_are_valid_and_named_after_their_file():
    """Every bundled suite (default, paper protocols, sensitivity) parses, by name or path."""
    from harness import data

    bundled = data.suites()
    assert {"default", "thorn", "mckeown", "struppek", "imagededup", "sensitivity"} <= set(bundled)
    for name, path in bundled.items():
        assert load_suite(name) == load_suite(path)
        assert load_suite(name).name == name  # --suite NAME and the reports agree
    assert len(load_suite("thorn").transforms) == 11
    assert bundled["default"] == DEFAULT_SUITE


def test_a_path_wins_over_a_bundled_name(tmp_path, monkeypatch):
    (tmp_path / "ci").write_text(
        'name = "mine"\nalgorithms = ["phash"]\ntransforms = ["identity"]\n'
    )
    monkeypatch.chdir(tmp_path)
    assert load_suite("ci").name == "mine"
    with pytest.raises(
        SuiteError, match=r"no bundled suite of that name \(bundled: algorithms, ci"
    ):
        load_suite("no_such_suite")


def test_ladders_and_presets_expand_inside_suites():
    suite = parse_suite({**MINIMAL, "transforms": ["identity", "crop@S1-S3", "preset:avatar"]})
    assert [c.display for c in suite.transforms][:2] == ["identity", "crop(keep_area=0.95)"]
    assert suite.transforms[-1].display == "preset:avatar"
    with pytest.raises(SuiteError, match="duplicates transforms"):
        parse_suite({**MINIMAL, "transforms": ["crop@S3", "crop(keep_area=0.81)"]})
