"""The external-hasher protocol against a reference client that plays a vendor binary."""

import sys
from pathlib import Path

import numpy as np
import pytest

from harness import results
from harness.algorithms import make_algorithm
from harness.algorithms.external import External
from harness.core.errors import HarnessError, HashExcluded, InvalidParameterError
from harness.pipeline import run_suite
from harness.suite import parse_suite
from tests.conftest import synthetic_image

CLIENT = str(Path(__file__).resolve().parents[1] / "vendor" / "jsonl_hasher.py")


def vendor(*args, **params):
    return External(label="acme", command=(sys.executable, CLIENT, *args), **params)


def test_served_hashes_equal_the_in_process_adapter():
    images = [synthetic_image(90, 70, seed=s) for s in range(4)]
    for algo_text, bits, transport in [
        ("phash", 64, "png"),
        ("pdq", 256, "path"),
        ("colorhash", 42, "png"),
    ]:
        ext = vendor(algo_text, bits=bits, transport=transport)
        local = make_algorithm(algo_text)
        for im in images:
            assert np.array_equal(ext.hash(im), local.hash(im)), algo_text


def test_a_run_through_the_protocol_gives_identical_numbers():
    """The embedded corpus, PDQ in-process vs PDQ served by the vendor script (2 workers, so two
    vendor processes): every cell, collision count and exclusion agrees."""
    served = f"external(label='acme', command={[sys.executable, CLIENT, 'pdq']!r}, bits=256)"
    raw = {
        "algorithms": ["pdq", served],
        "transforms": ["identity", "jpeg@S3", "crop@S1", "rotate@S1"],
        "bootstrap_resamples": 0,
        "thresholds": {"external": [31]},  # PDQ's operating point for the served copy too
    }
    result = results.to_builtins(run_suite(parse_suite(raw), workers=2, quiet=True))
    local, remote = (result["algorithms"][i]["id"] for i in (0, 1))
    for key in ("cells", "collisions"):
        mine = [
            {k: v for k, v in c.items() if k != "algorithm"}
            for c in result[key]
            if c["algorithm"] == local
        ]
        theirs = [
            {k: v for k, v in c.items() if k != "algorithm"}
            for c in result[key]
            if c["algorithm"] == remote
        ]
        assert mine == theirs
    excluded = {
        (e["image"], e["transform"]) for e in result["exclusions"] if e["algorithm"] == local
    }
    assert excluded == {
        (e["image"], e["transform"]) for e in result["exclusions"] if e["algorithm"] == remote
    }
    assert excluded  # the quality gate travels through the protocol as "excluded"
    assert not result["failures"]


@pytest.mark.parametrize(
    ("mode", "error", "message"),
    [
        ("crash", HarnessError, "hasher exited (code 3)"),
        ("hang", HarnessError, "no reply within 1 s"),
        ("garbage", HarnessError, "reply is not JSON: b'Segmentation fault"),
        ("wrong_bits", HarnessError, "hash has 56 bits, declared 64"),
        ("wrong_id", HarnessError, "reply is for id 'not-"),
        ("error", HarnessError, "acme could not hash the image: unsupported colour profile"),
        ("spam", HarnessError, "reply longer than"),
    ],
)
def test_misbehaving_hashers_fail_one_image_and_recover(mode, error, message):
    args = ("phash", "--misbehave", mode, "--after", "1")
    ext = vendor(*args, bits=64, timeout=1.0)
    # The same hasher (same label and argv: one process) with a timeout that lets it start up on
    # a loaded machine; only the misbehaving request is held to 1 s.
    patient = vendor(*args, bits=64, timeout=120.0)
    image = synthetic_image(40, 30, seed=1)
    expected = make_algorithm("phash").hash(image)
    assert np.array_equal(patient.hash(image), expected)  # request 0 is fine
    with pytest.raises(error, match=message.replace("(", r"\(").replace(")", r"\)")):
        ext.hash(image)  # request 1 misbehaves
    if mode != "error":  # a broken process is replaced: the next image works again
        assert np.array_equal(patient.hash(image), expected)


def test_misbehaving_hasher_in_a_run_becomes_recorded_failures():
    cmd = [sys.executable, CLIENT, "phash", "--misbehave", "crash", "--after", "2"]
    raw = {
        "algorithms": ["phash", f"external(label='flaky', command={cmd!r}, bits=64, timeout=5.0)"],
        "transforms": ["identity", "jpeg@S3"],
        "bootstrap_resamples": 0,
        "max_failure_rate": 1.0,
    }
    result = results.to_builtins(run_suite(parse_suite(raw), workers=1, quiet=True))
    failures = [f for f in result["failures"] if f["algorithm"] == "flaky"]
    assert failures
    assert all("hasher exited (code 3)" in f["error"] for f in failures)
    phash_cells = [c for c in result["cells"] if c["algorithm"] == "phash"]
    assert all(c["positives"]["n"] == 17 for c in phash_cells)  # the other algorithm is unaffected


def test_excluded_replies_are_exclusions():
    flat = synthetic_image(40, 30, seed=1).convert("L").point(lambda v: 128).convert("RGB")
    with pytest.raises(HashExcluded, match="PDQ quality"):
        vendor("pdq", bits=256).hash(flat)


def test_invalid_external_specs():
    with pytest.raises(InvalidParameterError, match="argv, no shell"):
        External(command=())
    with pytest.raises(InvalidParameterError, match="argv, no shell"):
        External(command="rm -rf / | cat")
    with pytest.raises(InvalidParameterError, match="'transport' parameter of external"):
        vendor("phash", transport="socket")
    algo = make_algorithm(
        f"external(label='acme', command={[sys.executable, CLIENT, 'phash']!r}, bits=64)"
    )
    assert algo.id == "acme"  # the suite's label, never the argv
    assert algo.spec == "external(bits=64,label='acme')"
    assert algo.fingerprint()["command"][-1] == "phash"


def test_the_hasher_gets_a_minimal_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("HASH_HARNESS_SECRET", "do-not-leak")
    script = tmp_path / "env_hasher.py"
    script.write_text(
        "import json, os, sys\n"
        "for line in sys.stdin:\n"
        "    r = json.loads(line)\n"
        "    h = ('ff' if 'HASH_HARNESS_SECRET' in os.environ else '00') * 8\n"
        "    print(json.dumps({'id': r['id'], 'hash': h}), flush=True)\n"
    )
    ext = External(label="envcheck", command=(sys.executable, str(script)), bits=64)
    assert not np.unpackbits(ext.hash(synthetic_image(8, 8))).any()
