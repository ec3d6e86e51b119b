from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pytest

from datasets_benign import Dataset, ImageRecord
from harness.algorithms import make_algorithm
from harness.algorithms.base import HashAlgorithm
from harness.hashing import hash_image
from harness.runner import hash_corpus
from tests.conftest import synthetic_image
from transforms import parse_chain
from transforms.base import Transform


@dataclass(frozen=True)
class _Exploding(Transform):
    name: ClassVar[str] = "exploding_for_test"

    def _apply(self, image, rng):
        raise MemoryError("simulated")


@dataclass(frozen=True)
class _BadHash(HashAlgorithm):
    name: ClassVar[str] = "bad_hash_for_test"

    @property
    def n_bits(self):
        return 64

    def hash_bits(self, image):
        return np.zeros(63, dtype=bool)  # wrong length: must be caught, not stored


@pytest.fixture
def records(tmp_path):
    out = []
    for i in range(3):
        path = tmp_path / f"im{i}.png"
        synthetic_image(64, 48, seed=i).save(path)
        out.append(ImageRecord(id=path.name, path=str(path)))
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    out.append(ImageRecord(id="broken.png", path=str(tmp_path / "broken.png")))
    return out


def test_failures_are_recorded_per_stage_and_the_rest_continues(records):
    chains = (parse_chain("jpeg(quality=80)"), parse_chain("identity"))
    chains = (chains[0], type(chains[0])((_Exploding(),)), chains[1])
    algos = (make_algorithm("phash"), _BadHash())
    outcome = hash_image(records[0], chains, algos, suite_seed=0)
    stages = sorted(
        (f["stage"], f.get("transform", ""), f.get("algorithm", "")) for f in outcome.failures
    )
    assert ("transform", "exploding_for_test", "") in stages
    assert ("hash", "original", "bad_hash_for_test") in stages
    assert "declared 64" in next(f["error"] for f in outcome.failures if f["stage"] == "hash")
    assert outcome.hashes[0][0] is not None  # phash of the original survived
    assert outcome.hashes[2] == [None, None]  # the exploding chain produced nothing
    broken = hash_image(records[3], chains, algos, suite_seed=0)
    assert broken.failures[0]["stage"] == "decode"
    assert broken.sha256 is None


def test_hash_corpus_fills_arrays_and_masks(records):
    data = Dataset("t", tuple(records), "x")
    chains = (parse_chain("identity"),)
    algos = (make_algorithm("dhash"), make_algorithm("pdq"))
    corpus = hash_corpus(data, chains, algos, seed=0, workers=1)
    assert corpus.packed[0].shape == (2, 4, 8)
    assert corpus.packed[1].shape == (2, 4, 32)
    assert corpus.ok[0].tolist() == [[True, True, True, False]] * 2
    assert corpus.decoded.tolist() == [True, True, True, False]
    assert np.array_equal(corpus.packed[1][0], corpus.packed[1][1])  # identity == original


@dataclass(frozen=True)
class _Counting(HashAlgorithm):
    """aHash bits, counting calls; excludes images narrower than 40 px like a quality gate."""

    name: ClassVar[str] = "counting_for_test"
    calls: ClassVar[list[int]] = []

    @property
    def n_bits(self):
        return 64

    def hash_bits(self, image):
        from harness.core.errors import HashExcluded

        self.calls.append(image.width)
        if image.width < 40:
            raise HashExcluded("too narrow for this test")
        return make_algorithm("average_hash").hash_bits(image)


@dataclass(frozen=True)
class _CountingExternal(_Counting):
    name: ClassVar[str] = "counting_external_for_test"
    cacheable: ClassVar[bool] = False


@pytest.mark.parametrize("width", [64, 30])
def test_identity_repeats_the_original_without_hashing_it_again(tmp_path, width):
    """Identity pixels are the original's: its cells repeat the original's outcome (hash or
    exclusion); only a non-cacheable (external) hasher is asked again."""
    path = tmp_path / "im.png"
    synthetic_image(width, 48, seed=1).save(path)
    record = ImageRecord(id="im.png", path=str(path))
    chains = (parse_chain("identity"), parse_chain("jpeg(quality=80)"))
    _Counting.calls.clear()
    outcome = hash_image(record, chains, (_Counting(), _CountingExternal()), suite_seed=0)
    assert len(_Counting.calls) == 2 + 3  # original + jpeg; external: original + identity + jpeg
    assert outcome.hashes[1] == outcome.hashes[0]
    if width < 40:
        columns = [(e["transform"], e["algorithm"]) for e in outcome.exclusions]
        assert ("identity", "counting_for_test") in columns
        assert ("identity", "counting_external_for_test") in columns
        assert len(columns) == 6
    else:
        assert outcome.hashes[0][0] is not None
        assert outcome.exclusions == []
