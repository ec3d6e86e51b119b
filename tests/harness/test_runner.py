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


def test_thumbnails_are_made_of_the_original_and_of_escaped_copies_only(records):
    """A copy that matched its original under every algorithm gets no thumbnail."""
    from harness.hashing import escaped

    chains = tuple(parse_chain(c) for c in ("identity", "jpeg(quality=90)", "rotate(degrees=90)"))
    algos = (make_algorithm("phash"), make_algorithm("pdq"))
    escape = tuple(a.default_threshold().bits for a in algos)
    out = hash_image(records[0], chains, algos, suite_seed=0, escape=escape)
    assert out.thumbnails[0] is not None
    assert out.thumbnails[0].startswith(b"\xff\xd8")
    made = [c for c in (1, 2, 3) if out.thumbnails[c] is not None]
    expected = [c for c in (1, 2, 3) if escaped(algos, escape, out.hashes[0], out.hashes[c])]
    assert made == expected
    assert made == [3]  # identity and a mild jpeg matched everywhere; a quarter turn escapes
    none = hash_image(records[0], chains, algos, suite_seed=0)  # no escape thresholds
    assert none.thumbnails[1:] == [None, None, None]


def test_held_thumbnails_stay_bounded_as_the_corpus_grows(tmp_path, monkeypatch):
    """Every copy escapes, yet only each cell's review-list candidates are held."""
    import harness.evaluate

    monkeypatch.setattr(harness.evaluate, "REVIEW_LIMIT", 2)
    chains = (parse_chain("rotate(degrees=90)"), parse_chain("hflip"))
    algos = (make_algorithm("phash"),)
    held = []
    for n in (4, 12):
        recs = []
        for i in range(n):
            path = tmp_path / f"n{n}_{i:02d}.png"
            synthetic_image(60 + i, 48, seed=100 + i).save(path)
            recs.append(ImageRecord(id=path.name, path=str(path)))
        corpus = hash_corpus(Dataset("s", tuple(recs), "x"), chains, algos, seed=0, escape=(-1,))
        held.append(corpus.thumbnails.held)
        # The held ones are each cell's worst (distance, then image id descending).
        for t, _ in enumerate(chains):
            d = [corpus.packed[0][1 + t, i] ^ corpus.packed[0][0, i] for i in range(n)]
            dist = [int(np.unpackbits(x).sum()) for x in d]
            worst = sorted(zip(dist, corpus.image_ids, strict=True), reverse=True)[:2]
            index = {k: i for i, k in enumerate(corpus.image_ids)}
            for _, image in worst:
                assert corpus.thumbnails.get(index[image], 1 + t) is not None
    assert held == [4, 4]  # 2 per (algorithm, transform), whatever the corpus size


def test_a_new_edit_of_a_cached_image_is_measured_against_the_cached_original(records, tmp_path):
    """Adding a transform hashes only its column; whether it escaped is decided against the
    original's cached hash, so its thumbnail is made without hashing the original again."""
    from harness.store import HashStore

    data = Dataset("t", tuple(records[:2]), "x")
    algos = (make_algorithm("phash"),)
    mild, turn = parse_chain("jpeg(quality=90)"), parse_chain("rotate(degrees=90)")
    with HashStore(tmp_path / "c.sqlite") as store:
        hash_corpus(data, (mild,), algos, seed=0, store=store, escape=(10,))
        corpus = hash_corpus(data, (mild, turn), algos, seed=0, store=store, escape=(10,))
    assert corpus.hashes_computed == 2  # the new column of each image, nothing else
    assert corpus.thumbnails.get(0, 2) is not None  # the quarter turn escaped
    assert corpus.thumbnails.get(0, 1) is None  # the mild jpeg matched
