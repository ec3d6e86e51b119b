"""Within one run a policy reads its parts' hashes instead of computing them again, with the
same bytes, and each unit's cost is what it would cost alone."""

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pytest
from PIL import Image

from datasets_benign import ImageRecord
from harness.algorithms import make_algorithm, shared
from harness.algorithms.base import HashAlgorithm
from harness.algorithms.policies import And, Dihedral, Or
from harness.algorithms.shared import SharedHashes
from harness.core.errors import HashExcluded
from harness.hashing import hash_image
from tests.conftest import synthetic_image
from transforms import parse_chain

#: The policies suite's units and a few more that share parts, turned pictures and PDQ quality.
UNITS = [
    "pdq",
    "phash",
    "pdq & phash",
    "pdq | phash",
    "pdq + phash",
    "pdq<=31 & phash<=10",
    "dihedral(phash)",
    "dihedral(phash) | pdq",
    "pdq_dihedral",
    "unletterbox(pdq)",
    "unletterbox(phash,color='uniform')",
    "gate(phash,quality=50)",
    "gate(pdq(quality_gate=0),quality=60)",
    "(pdq & phash) | dhash",
]


@pytest.mark.parametrize("seed", [0, 1])
def test_shared_hashes_are_the_bytes_each_unit_makes_alone(tmp_path, seed):
    """hash_image (one SharedHashes per column) gives every unit the bytes of its own hash()."""
    picture = synthetic_image(96, 72, seed=seed)
    framed = np.zeros((112, 96, 3), np.uint8)
    framed[20:92] = np.asarray(picture)
    path = tmp_path / "framed.png"
    Image.fromarray(framed).save(path)
    record = ImageRecord(id="framed.png", path=str(path))
    chains = (parse_chain("rotate90(k=1)"), parse_chain("jpeg(quality=60)"))
    units = [make_algorithm(u) for u in UNITS]
    outcome = hash_image(record, chains, units, suite_seed=0)
    images = [record.load()] + [
        c.apply(record.load(), suite_seed=0, image_id=record.id) for c in chains
    ]
    for c, image in enumerate(images):
        for a, unit in enumerate(units):
            try:
                alone = unit.hash(image).tobytes()
            except HashExcluded:
                alone = None
            assert outcome.hashes[c][a] == alone, (c, unit.id)


@dataclass(frozen=True)
class _Work(HashAlgorithm):
    """64 bits that cost ``cost`` seconds of a fake CPU clock; every call is counted."""

    name: ClassVar[str] = "work_for_test"
    calls: ClassVar[list[str]] = []
    clock: ClassVar[list[float]] = [0.0]
    cost: int = 1

    @property
    def n_bits(self):
        return 64

    def hash_bits(self, image):
        self.calls.append(self.id)
        self.clock[0] += self.cost
        return np.unpackbits(np.full(8, self.cost, np.uint8)).astype(bool)


@pytest.fixture
def fake_clock(monkeypatch):
    _Work.calls.clear()
    _Work.clock[0] = 0.0
    monkeypatch.setattr(shared, "cpu_seconds", lambda: _Work.clock[0])


def test_each_part_is_hashed_once_per_picture(fake_clock):
    a, b = _Work(cost=1), _Work(cost=2)
    units = [a, b, And(parts=(a, b)), Or(parts=(a, b)), Dihedral(parts=(a,))]
    image = synthetic_image(32, 24, seed=0)
    memo = SharedHashes(image)
    rows = [memo.hash(u) for u in units]
    # a and b once each for the upright picture; a once more for each of the 7 turned ones
    assert sorted(_Work.calls) == ["work_for_test"] * 8 + ["work_for_test(cost=2)"]
    assert all(np.array_equal(r, u.hash(image)) for r, u in zip(rows, units, strict=True))


def test_a_units_cost_is_everything_it_needed_counted_once(fake_clock):
    """The fusion costs its parts' CPU although they were hashed before it; a part read twice
    counts once; a shared part counts in full for each unit that reads it."""
    a, b = _Work(cost=1), _Work(cost=2)
    memo = SharedHashes(synthetic_image(32, 24, seed=0))
    costs = {
        u.id: memo.hash_and_cost(u)[1]
        for u in [a, b, And(parts=(a, b)), Or(parts=(And(parts=(a, b)), a)), Dihedral(parts=(a,))]
    }
    assert costs == {
        "work_for_test": 1,
        "work_for_test(cost=2)": 2,
        "work_for_test & work_for_test(cost=2)": 3,
        "work_for_test | (work_for_test & work_for_test(cost=2))": 3,
        "dihedral(work_for_test)": 8,  # the upright hash and 7 turned pictures' (the turns: 0)
    }


def test_a_failing_part_fails_every_unit_that_reads_it_the_same_way():
    memo = SharedHashes(Image.new("RGB", (64, 64), (128, 128, 128)))
    gated = make_algorithm("pdq")  # a flat picture: below PDQ's quality gate
    with pytest.raises(HashExcluded) as alone:
        memo.hash(gated)
    with pytest.raises(HashExcluded) as fused:
        memo.hash(make_algorithm("pdq & phash"))
    assert str(fused.value) == str(alone.value)


@dataclass(frozen=True)
class _OwnHash(And):
    """A plugin policy that overrides hash() only (its parts' rows reversed)."""

    name: ClassVar[str] = "own_hash_for_test"

    def hash(self, image):
        return np.concatenate([p.hash(image) for p in reversed(self.parts)])


def test_a_policy_that_overrides_hash_is_hashed_through_it():
    a, b = _Work(cost=1), _Work(cost=2)
    image = synthetic_image(32, 24, seed=0)
    own = _OwnHash(parts=(a, b))
    assert np.array_equal(SharedHashes(image).hash(own), own.hash(image))
    assert not np.array_equal(own.hash(image), And(parts=(a, b)).hash(image))
