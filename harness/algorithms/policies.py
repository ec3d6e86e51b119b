"""Matching policies: how a platform really decides, built from one or more hashes.

A policy is a :class:`~harness.algorithms.base.HashAlgorithm` like any other: its "hash" is one
packed row per image and its :meth:`metric` turns two sets of rows into integer distance levels,
so every report, threshold, ``compare`` and ``check`` works on policies unchanged. Written in a
suite's ``algorithms`` list (canonical ids shown, parts in any order on input)::

    "pdq & phash"              both hashes within the threshold (AND)
    "pdq | phash"              either hash within the threshold (OR)
    "pdq + phash"              sum of the normalised distances within the threshold
    "pdq<=31 | phash<=10"      per-part thresholds: PDQ <= 31 or pHash <= 10 at the default
    "dihedral(phash)"          minimum over the 8 orientations of the reference (turned pixels)
    "pdq_dihedral"             the same with PDQ's own orientations (dihedral(pdq,orientations=
                               'native'))
    "unletterbox(pdq)"         uniform borders removed before hashing
    "gate(phash,quality=50)"   hashes of images of PDQ quality below 50 discarded

Fusion puts the parts' distances on one integer grid: the least common multiple of their levels
when it is at most :data:`MAX_GRID` (exact: pdq 0..256 and phash 0..64 -> phash x 4), else the
largest part's levels with each distance rounded up (the binning is written in ``distance``,
which results record). AND is the maximum of the normalised distances (every part within ``t``
of the grid), OR the minimum, sum their sum. A part that discards an image (PDQ's quality gate)
discards the AND's and the sum's hash of it (a gated copy is a miss, as for a single hash); an
OR decides on the parts that remain and discards the image only when every part does. With
per-part thresholds each part's distance is multiplied by ``lcm(thresholds) / its threshold``, so
``lcm`` on the grid is exactly the stated rule (binned by a divisor of ``lcm`` past the cap).
"""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import math
import re
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
import numpy.typing as npt
from PIL import Image

from harness.algorithms.base import (
    ALGORITHMS,
    HashAlgorithm,
    OperatingThreshold,
)
from harness.algorithms.shared import SharedHashes
from harness.core.errors import HashExcluded, InvalidParameterError
from harness.core.params import check_choice, check_int
from harness.core.registry import Registry
from harness.core.spec import check_once, keyword, make_spec, parse_call
from harness.core.words import quoted as _quoted
from harness.kernels import FusedPlan

#: Policies by name; plugins register theirs under the entry-point group below.
POLICIES: Registry[type[Policy]] = Registry("policy", "hash_harness.policies")

#: Largest exact common grid of a fusion; beyond it distances are binned to the largest part.
MAX_GRID = 4096
#: Largest common multiple of a fusion's per-part thresholds (distances x it stay in int64).
MAX_LCM = 1 << 32
#: Most parts one fusion fuses, and how deeply an expression nests (parentheses, policies around
#: policies): past these an expression is a typing accident, not a matching design.
MAX_PARTS = 16
MAX_DEPTH = 8

Levels = npt.NDArray[np.int64]
Rows = npt.NDArray[np.uint8]


def part_distances(algo: HashAlgorithm, queries: Rows, references: Rows) -> Levels:
    """``algo``'s distance levels between every query and reference row, shape ``(nq, nr)``."""
    metric = algo.metric()
    if metric is not None:
        return np.asarray(metric(queries, references), dtype=np.int64)
    q: npt.NDArray[np.unsignedinteger[Any]]
    r: npt.NDArray[np.unsignedinteger[Any]]
    if queries.shape[1] % 8 == 0:  # whole 64-bit words: 8x fewer XORs and popcounts
        q = np.ascontiguousarray(queries).view(np.uint64)
        r = np.ascontiguousarray(references).view(np.uint64)
    else:
        q, r = queries, references
    return np.bitwise_count(q[:, None, :] ^ r[None, :, :]).sum(axis=2, dtype=np.int64)


@dataclass(frozen=True)
class Policy(HashAlgorithm):
    """Base of matching policies: ``parts`` are the algorithms (or policies) it is built from."""

    standalone: ClassVar[bool] = False  # needs its parts: never in "every algorithm" sets
    parts: tuple[HashAlgorithm, ...] = ()

    def __post_init__(self) -> None:
        parts = self.parts
        if isinstance(parts, HashAlgorithm):
            parts = (parts,)
        if not isinstance(parts, tuple | list) or not all(
            isinstance(p, HashAlgorithm) for p in parts
        ):
            raise InvalidParameterError(f"{self.name} is built from algorithms, got {parts!r}")
        object.__setattr__(self, "parts", tuple(parts))

    # -- identity ----------------------------------------------------------------------------
    def options(self) -> dict[str, Any]:
        """Parameters other than ``parts``, at their non-default values (for the id)."""
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name != "parts" and value != f.default:
                out[f.name] = value
        return out

    @property
    def id(self) -> str:
        options = [f"{k}={v!r}" for k, v in sorted(self.options().items())]
        args = [p.id for p in self.parts] + options
        return f"{self.name}({','.join(args)})"

    def params(self) -> dict[str, Any]:
        return {**self.options(), "parts": [p.id for p in self.parts]}

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "params": self.params()}

    def fingerprint(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "version": self.version,
            "parts": [p.fingerprint() for p in self.parts],
        }

    def code_fingerprint(self) -> str:
        from harness.codehash import class_fingerprint

        cls: type = type(self)  # a class object is hashable whatever its instances are
        own = class_fingerprint(cls)
        text = "|".join([own, *(p.code_fingerprint() for p in self.parts)])
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @property  # type: ignore[misc]
    def cacheable(self) -> bool:  # type: ignore[override]
        return all(p.cacheable for p in self.parts)

    @property  # type: ignore[misc]
    def symmetric(self) -> bool:  # type: ignore[override]
        return all(p.symmetric for p in self.parts)

    # -- rows --------------------------------------------------------------------------------
    @property
    def n_bits(self) -> int:
        return 8 * self.n_bytes

    @property
    def n_bytes(self) -> int:
        return sum(p.n_bytes for p in self.parts)

    @property
    def level_unit(self) -> str:  # type: ignore[override]
        units = {p.level_unit for p in self.parts}
        return units.pop() if len(units) == 1 else "levels"

    def hash(self, image: Image.Image) -> npt.NDArray[np.uint8]:
        return self.hash_shared(SharedHashes(image))

    def hash_shared(self, memo: SharedHashes) -> npt.NDArray[np.uint8]:
        if type(self).hash is not Policy.hash:  # a plugin's own hash() decides its bytes
            return self.hash(memo.image)
        return np.concatenate([memo.hash(p) for p in self.parts])

    def hash_bits(self, image: Image.Image) -> npt.NDArray[np.bool_]:
        return np.unpackbits(self.hash(image))[: self.n_bits].astype(bool)

    def operating_thresholds(self) -> tuple[OperatingThreshold, ...]:
        return self.parts[0].operating_thresholds()


# -- fusion -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fusion(Policy):
    """Two or more hashes on one grid of distance levels, combined by :meth:`combine`.

    ``limits`` (one per part, optional) are per-part thresholds: each part's distance is then
    divided by its own limit on an exact integer grid (scaled by ``lcm(limits) / limit``), so
    the fusion at its default threshold is exactly the per-part rule (``pdq<=31 & phash<=10``:
    PDQ <= 31 and pHash <= 10) and its other thresholds sweep every part's scale together."""

    symbol: ClassVar[str] = ""
    rule: ClassVar[str] = ""
    #: How the parts' conditions join ("and", "or"; "" for a sum, which has no per-part one).
    word: ClassVar[str] = ""
    #: Whether the rule can decide with some parts discarded (OR: the others may still match).
    #: Such rows end with one byte per part, 1 = usable; a discarded part is at the top level.
    partial: ClassVar[bool] = False
    limits: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        super().__post_init__()
        if len(self.parts) < 2:
            raise InvalidParameterError(f"{self.name} fuses two or more hashes, got {self.id}")
        limits = tuple(self.limits) if isinstance(self.limits, tuple | list) else None
        if limits is None or (limits and len(limits) != len(self.parts)):
            raise InvalidParameterError(
                f"{self.name} takes one threshold per part ({len(self.parts)}), got {self.limits!r}"
            )
        if len(self.parts) > MAX_PARTS:
            raise InvalidParameterError(
                f"{self.name} fuses at most {MAX_PARTS} hashes, got {len(self.parts)}: a "
                "platform fuses a few different hashes; split the policy into smaller ones."
            )
        for p, t in zip(self.parts, limits, strict=False):
            # the range of a suite's [thresholds]: 0 (equal hashes only) to every level
            check_int("threshold", t, owner=p.id, min_value=0, max_value=p.n_levels)
        if limits and _common(limits) > MAX_LCM:
            raise InvalidParameterError(
                f"{self.name}: the thresholds {limits} have no common multiple up to {MAX_LCM}; "
                "round some of them (their grid would overflow)."
            )
        # Canonical order: "phash & pdq" and "pdq & phash" are one policy with one id.
        pairs = sorted(
            zip(self.parts, limits or (0,) * len(self.parts), strict=True),
            key=lambda pt: (pt[0].id, pt[1]),
        )
        object.__setattr__(self, "parts", tuple(p for p, _ in pairs))
        object.__setattr__(self, "limits", tuple(t for _, t in pairs) if limits else ())
        twice = [p.id for p, q in zip(self.parts, self.parts[1:], strict=False) if p.id == q.id]
        if twice:
            raise InvalidParameterError(
                f"{twice[0]} is fused with itself in {self.id!r}: a fusion's parts must differ "
                "(a hash fused with itself is that hash; give it one threshold)."
            )

    @property
    def shown(self) -> list[str]:
        """The parts' ids as written in the fusion's (a nested fusion in parentheses)."""
        return [f"({p.id})" if isinstance(p, Fusion) else p.id for p in self.parts]

    @property
    def id(self) -> str:
        shown = self.shown
        if self.limits:
            shown = [f"{s}<={t}" for s, t in zip(shown, self.limits, strict=True)]
        return f" {self.symbol} ".join(shown)

    @property
    def _scales(self) -> tuple[list[tuple[int, int]], int]:
        """``(fractions, grid)``: part ``k``'s distance ``d`` is on the grid at
        ``ceil(d * num / den)`` with ``fractions[k] == (num, den)``; the grid runs ``0..grid``."""
        levels = [p.n_levels for p in self.parts]
        if not self.limits:
            lcm = math.lcm(*levels)
            grid = lcm if lcm <= MAX_GRID else max(levels)  # else rounded up onto the largest
            return [(grid, n) for n in levels], grid
        common = _common(self.limits)  # every part at its own limit sits at `common`
        # a part whose limit is 0 (equal hashes only) is past `common` at any distance above 0
        multipliers = [common // t if t else common + 1 for t in self.limits]
        top = max(n * m for n, m in zip(levels, multipliers, strict=True))
        # bins of a width dividing `common`, so that "<= common / width" stays the exact rule
        small = [w for w in range(1, math.isqrt(common) + 1) if common % w == 0]
        width = min(w for w in small + [common // w for w in small] if top <= MAX_GRID * w)
        return [(m, width) for m in multipliers], -(-top // width)

    @property
    def grid(self) -> int:
        """Levels of the common grid every part's distance is put on."""
        return self._scales[1]

    @property
    def level_unit(self) -> str:  # type: ignore[override]
        # Bits stay bits only when no part is rescaled onto the grid.
        same = not self.limits and all(p.n_levels == self.grid for p in self.parts)
        return super().level_unit if same else f"levels of {self.grid}"

    @property
    def exact(self) -> bool:
        """Whether every level of every part has its own level on the grid."""
        return all(num % den == 0 for num, den in self._scales[0])

    @property
    def distance(self) -> str:  # type: ignore[override]
        fractions, g = self._scales
        if self.limits:
            width = fractions[0][1]
            scale = ", ".join(f"{p} x{m}" for p, (m, _) in zip(self.shown, fractions, strict=True))
            if width > 1:
                scale += f", divided by {width} and rounded up"
            rule = ", ".join(f"{p} <= {t}" for p, t in zip(self.shown, self.limits, strict=True))
            return (
                f"{self.rule} of the parts' distances per their own thresholds on a 0..{g} grid "
                f"({scale}; {_common(self.limits) // width} on it is {rule})"
            )
        if self.exact:
            scale = ", ".join(f"{p.id} x{g // p.n_levels}" for p in self.parts)
        else:
            scale = ", ".join(
                f"{p.id} 0..{p.n_levels} binned to 0..{g}, rounded up" for p in self.parts
            )
        return f"{self.rule} of the parts' distances on a 0..{g} grid ({scale})"

    @property
    def n_bytes(self) -> int:
        return super().n_bytes + (len(self.parts) if self.partial else 0)

    def hash_shared(self, memo: SharedHashes) -> npt.NDArray[np.uint8]:
        if not self.partial:
            return super().hash_shared(memo)  # any part discarding the image discards this
        slots, usable, reasons = [], [], []
        for p in self.parts:
            try:
                slots.append(memo.hash(p))
                usable.append(1)
            except HashExcluded as exc:
                slots.append(np.zeros(p.n_bytes, np.uint8))
                usable.append(0)
                reasons.append(f"{p.id}: {exc}")
        if not any(usable):
            raise HashExcluded("; ".join(reasons))
        return np.concatenate([*slots, np.array(usable, np.uint8)])

    def on_grid(self, k: int, d: Levels) -> Levels:
        """Part ``k``'s distance levels ``d`` on the common grid (exact or rounded up)."""
        num, den = self._scales[0][k]
        return -(-d * num // den)

    def normalised(self, queries: Rows, references: Rows) -> Levels:
        """Every part's distances on the grid, shape ``(n_parts, nq, nr)``."""
        out, start = [], 0
        for k, p in enumerate(self.parts):
            stop = start + p.n_bytes
            d = self.on_grid(
                k, part_distances(p, queries[:, start:stop], references[:, start:stop])
            )
            if self.partial:
                flag = -len(self.parts) + k
                both = (queries[:, flag, None] == 1) & (references[None, :, flag] == 1)
                d = np.where(both, d, self.grid)
            out.append(d)
            start = stop
        return np.stack(out)

    def combine(self, stacked: Levels) -> Levels:
        raise NotImplementedError

    def metric(self) -> _Metric:
        return _Metric(self)

    def default_threshold(self) -> OperatingThreshold:
        own = self.limits or tuple(p.default_threshold().bits for p in self.parts)
        on_grid = [self.on_grid(k, np.array(t, dtype=np.int64)) for k, t in enumerate(own)]
        bits = int(self.combine(np.array(on_grid, dtype=np.int64).reshape(-1, 1, 1))[0, 0])
        listed = ", ".join(f"{p} <= {t}" for p, t in zip(self.shown, own, strict=True))
        which = "thresholds" if self.limits else "defaults"
        source = f"{self.rule} of the parts' {which} ({listed})"
        if not self.limits:  # a shared threshold holds each part to its own share of it
            source += f": at {bits} of 0..{self.n_levels}, {self.meaning(bits)}"
        return OperatingThreshold(bits, source)

    def meaning(self, threshold: int) -> str:
        """What ``threshold`` on the grid asks of each part, e.g. ``"pdq <= 31 or phash <=
        7"``: part ``k`` within ``threshold`` of the grid is within ``floor(threshold x den /
        num)`` of its own levels (exact: ``ceil(d x num / den) <= t`` iff that)."""
        fractions = self._scales[0]
        if self.word:
            limits = [threshold * den // num for num, den in fractions]
            shown = zip(self.shown, limits, strict=True)
            return f" {self.word} ".join(f"{p} <= {t}" for p, t in shown)
        if all(num % den == 0 for num, den in fractions):
            scaled = zip(self.shown, fractions, strict=True)
            return " + ".join(f"{p} x{num // den}" for p, (num, den) in scaled) + f" <= {threshold}"
        return f"the parts' distances on the grid (rounded up) add up to <= {threshold}"

    def operating_thresholds(self) -> tuple[OperatingThreshold, ...]:
        return (self.default_threshold(),)


def _common(limits: tuple[int, ...]) -> int:
    """The least common multiple of a fusion's per-part thresholds other than 0."""
    return math.lcm(*(t for t in limits if t))  # 1 when every one is 0


@POLICIES.register("and")
@dataclass(frozen=True)
class And(Fusion):
    """Match when every part is within the threshold (the maximum of normalised distances)."""

    name: ClassVar[str] = "and"
    symbol: ClassVar[str] = "&"
    rule: ClassVar[str] = "maximum"
    word: ClassVar[str] = "and"

    @property
    def n_levels(self) -> int:
        return self.grid

    def combine(self, stacked: Levels) -> Levels:
        return stacked.max(axis=0)


@POLICIES.register("or")
@dataclass(frozen=True)
class Or(Fusion):
    """Match when any part is within the threshold (the minimum of normalised distances)."""

    name: ClassVar[str] = "or"
    symbol: ClassVar[str] = "|"
    rule: ClassVar[str] = "minimum"
    word: ClassVar[str] = "or"
    partial: ClassVar[bool] = True

    @property
    def n_levels(self) -> int:
        return self.grid

    def combine(self, stacked: Levels) -> Levels:
        return stacked.min(axis=0)


@POLICIES.register("sum")
@dataclass(frozen=True)
class Sum(Fusion):
    """Score-level fusion: the sum of the normalised distances against one threshold."""

    name: ClassVar[str] = "sum"
    symbol: ClassVar[str] = "+"
    rule: ClassVar[str] = "sum"

    @property
    def n_levels(self) -> int:
        return self.grid * len(self.parts)

    def combine(self, stacked: Levels) -> Levels:
        return stacked.sum(axis=0)


@dataclass(frozen=True)
class _Metric:
    """A fusion's metric as a picklable callable (``metric(queries, references)``)."""

    policy: Fusion

    def __call__(self, queries: Rows, references: Rows) -> Levels:
        return self.policy.combine(self.policy.normalised(queries, references))

    def plan(self) -> FusedPlan | None:
        """The compiled kernels' description of this fusion when every part is compared by
        Hamming (or is a dihedral minimum of one); None otherwise (numpy blocks)."""
        policy, slots, first = self.policy, [], 0
        for k, part in enumerate(policy.parts):
            slot = _hamming_slot(part, first)
            if slot is None:
                return None
            slots.append((*slot, *policy._scales[0][k]))
            first += part.n_bytes
        rule = _RULES[policy.rule]
        return FusedPlan(tuple(slots), rule, policy.grid, first if policy.partial else None)


_RULES: dict[str, Literal["max", "min", "sum"]] = {
    "maximum": "max",
    "minimum": "min",
    "sum": "sum",
}


def _hamming_slot(part: HashAlgorithm, first: int) -> tuple[int, int, int] | None:
    """``(first byte, bytes, orientations)`` of a part at byte ``first`` of a row that the
    compiled kernels compare by Hamming: a bit hash (1 orientation) or a dihedral minimum over
    one (8); None for any other distance."""
    metric = part.metric()
    if metric is None:
        return first, part.n_bytes, 1
    if isinstance(metric, DihedralMetric) and metric.part.metric() is None:
        return first, metric.part.n_bytes, len(ORIENTATIONS)
    return None


# -- one-part policies --------------------------------------------------------------------------


@dataclass(frozen=True)
class Wrapper(Policy):
    """A policy around one algorithm: distances and levels are the part's."""

    #: Why the policy around itself is degenerate (refused), and whether it is at any depth
    #: (else only directly inside: a gate after an unletterbox sees other pixels).
    twice: ClassVar[str] = "applies {name} twice"
    twice_at_any_depth: ClassVar[bool] = False

    def __post_init__(self) -> None:
        super().__post_init__()
        if len(self.parts) != 1:
            raise InvalidParameterError(f"{self.name} takes one algorithm, got {len(self.parts)}")
        inner = self._same_inside()
        if inner is not None:
            raise InvalidParameterError(
                f"{self.name}({self.part.id}) {self.twice.format(name=self.name)} ({inner.id} is "
                f"already inside it); write {self.part.id}."
            )

    def _same_inside(self) -> HashAlgorithm | None:
        """A policy of this kind inside this one (directly, or at any depth), or None."""
        stack: list[HashAlgorithm] = [self.part]
        while stack:
            algo = stack.pop()
            if isinstance(algo, type(self)):
                return algo
            if self.twice_at_any_depth:
                stack.extend(getattr(algo, "parts", ()))
        return None

    @property
    def part(self) -> HashAlgorithm:
        return self.parts[0]

    @property
    def n_bits(self) -> int:
        return self.part.n_bits  # the row is the part's row

    @property
    def n_levels(self) -> int:
        return self.part.n_levels

    @property
    def distance(self) -> str:  # type: ignore[override]
        return self.part.distance

    def metric(self) -> Any:
        return self.part.metric()

    def default_threshold(self) -> OperatingThreshold:
        return self.part.default_threshold()


#: The 8 orientations of the dihedral group, upright first (PIL transposes: lossless).
ORIENTATIONS: tuple[Image.Transpose | None, ...] = (
    None,
    Image.Transpose.ROTATE_90,
    Image.Transpose.ROTATE_180,
    Image.Transpose.ROTATE_270,
    Image.Transpose.FLIP_LEFT_RIGHT,
    Image.Transpose.FLIP_TOP_BOTTOM,
    Image.Transpose.TRANSPOSE,
    Image.Transpose.TRANSVERSE,
)


def turned(memo: SharedHashes, orientation: Image.Transpose | None) -> SharedHashes:
    """The picture of ``memo`` in ``orientation`` (made once per picture, whoever asks; None:
    upright)."""
    if orientation is None:
        return memo
    return memo.view(("transpose", orientation.name), lambda image: image.transpose(orientation))


def dihedral_min(part: HashAlgorithm, queries: Rows, references: Rows) -> Levels:
    """min over the reference's 8 orientation hashes of ``part``'s distance to the query's
    upright one. Rows hold 8 hashes of ``part.n_bytes`` bytes each, upright first."""
    w = part.n_bytes
    q = queries[:, :w]
    best = part_distances(part, q, references[:, :w])
    for k in range(1, 8):
        np.minimum(best, part_distances(part, q, references[:, k * w : (k + 1) * w]), out=best)
    return best


@dataclass(frozen=True)
class DihedralMetric:
    """Picklable ``metric(queries, references)`` of a dihedral policy over ``part``."""

    part: HashAlgorithm

    def __call__(self, queries: Rows, references: Rows) -> Levels:
        return dihedral_min(self.part, queries, references)

    def plan(self) -> FusedPlan | None:
        """The compiled kernels' description (a one-part fusion of 8 orientations) when the
        part is a bit hash; None otherwise (numpy blocks)."""
        slot = _hamming_slot(self.part, 0)
        if slot is None or slot[2] != 1:
            return None
        return FusedPlan(((0, slot[1], len(ORIENTATIONS), 1, 1),), "max", self.part.n_levels)


#: Where a dihedral policy's 8 orientations come from.
ORIENTATION_SOURCES = ("pixels", "native")


@POLICIES.register("dihedral")
@dataclass(frozen=True)
class Dihedral(Wrapper):
    """Minimum distance from the upload to the reference's 8 orientations.

    The orientations are the rotations by 90, 180 and 270 degrees, the two flips and the two
    transposes; an all-pairs false-match rate computed with the minimum includes the 8 chances
    to collide. ``orientations='pixels'`` hashes transposed pixels (any hash);
    ``orientations='native'`` takes the part's own derivation of the 8 hashes, for parts that
    offer one (a ``dihedral_hashes(image)`` method and the ``native_dihedral`` name the policy
    is known by: PDQ's DCT-derived orientations, ``pdq_dihedral``)."""

    name: ClassVar[str] = "dihedral"
    twice: ClassVar[str] = "turns what is already turned: the same 8 orientations, 8 times the bits"
    twice_at_any_depth: ClassVar[bool] = True
    orientations: str = "pixels"

    def __post_init__(self) -> None:
        super().__post_init__()
        check_choice(
            "orientations", self.orientations, owner="dihedral", choices=ORIENTATION_SOURCES
        )
        if self.orientations == "native" and self.native is None:
            raise InvalidParameterError(
                f"{self.part.id} derives no orientations of its own: write "
                f"dihedral({self.part.id}) to hash turned pixels (orientations='native' is "
                "for parts such as pdq)."
            )

    @property
    def native(self) -> str | None:
        """The name the part gives its own dihedral derivation (``pdq_dihedral``), if any."""
        return getattr(self.part, "native_dihedral", None)

    # With the part's own orientations the policy keeps the id and record of the algorithm it
    # replaced (pdq_dihedral), so results and baselines made with that id stay comparable.
    @property
    def _own_orientations(self) -> bool:
        return self.orientations == "native"

    @property
    def id(self) -> str:
        if self._own_orientations:
            return f"{self.native}{self.part.id[len(self.part.name) :]}"
        return super().id

    def params(self) -> dict[str, Any]:
        return self.part.params() if self._own_orientations else super().params()

    def to_dict(self) -> dict[str, Any]:
        if self._own_orientations:
            return {"name": self.native, "version": self.part.version, "params": self.params()}
        return super().to_dict()

    def fingerprint(self) -> dict[str, Any]:
        if self._own_orientations:
            return {**self.part.fingerprint(), "id": self.id}
        return super().fingerprint()

    @property  # type: ignore[misc]
    def symmetric(self) -> bool:  # type: ignore[override]
        return False  # the query upright, the reference in 8 orientations

    @property
    def n_bytes(self) -> int:
        return 8 * self.part.n_bytes

    @property
    def n_bits(self) -> int:
        return 8 * self.n_bytes

    @property
    def distance(self) -> str:  # type: ignore[override]
        return f"{self.part.distance}, minimum over the reference's 8 orientations"

    def hash_shared(self, memo: SharedHashes) -> npt.NDArray[np.uint8]:
        if self._own_orientations:
            return self.part.dihedral_hashes(memo.image)  # type: ignore[attr-defined]
        return np.concatenate([turned(memo, t).hash(self.part) for t in ORIENTATIONS])

    def metric(self) -> DihedralMetric:
        return DihedralMetric(self.part)


def unletterbox_box(
    pixels: npt.NDArray[np.uint8], threshold: int, color: str
) -> tuple[int, int, int, int]:
    """``(left, top, right, bottom)`` of the picture inside uniform borders.

    A border line (row or column, from the outside in) is one whose every channel value is at
    most ``threshold`` (``color="black"``, ThreatExchange's ``--black-threshold``, default 15)
    or within ``threshold`` of that side's outermost line's median colour (``"uniform"``). An
    image that is border all through is left whole.
    """
    h, w = pixels.shape[:2]
    px = pixels.astype(np.int16)

    def lines(view: npt.NDArray[np.int16]) -> int:
        """How many leading lines of ``view`` (lines, pixels, channels) are border."""
        if color == "black":
            border = (view <= threshold).all(axis=(1, 2))
        else:
            ref = np.median(view[0], axis=0)
            border = (np.abs(view - ref) <= threshold).all(axis=(1, 2))
        return int(np.argmin(border)) if not border.all() else int(border.shape[0])

    top = lines(px)
    if top == h:
        return 0, 0, w, h
    bottom = h - lines(px[::-1])
    left = lines(px.transpose(1, 0, 2))
    right = w - lines(px.transpose(1, 0, 2)[::-1])
    return left, top, right, bottom


@POLICIES.register("unletterbox")
@dataclass(frozen=True)
class Unletterbox(Wrapper):
    """Uniform borders (black by default) removed before hashing, as ThreatExchange does.

    ThreatExchange's ``--photo-preprocess unletterbox`` strips black lines, every channel at most
    ``--black-threshold`` 15; ``color='uniform'`` strips frames of any one colour."""

    name: ClassVar[str] = "unletterbox"
    twice: ClassVar[str] = "strips borders already stripped"
    threshold: int = 15
    color: str = "black"

    def __post_init__(self) -> None:
        super().__post_init__()
        check_int("threshold", self.threshold, owner="unletterbox", min_value=0, max_value=255)
        check_choice("color", self.color, owner="unletterbox", choices=("black", "uniform"))

    def hash_shared(self, memo: SharedHashes) -> npt.NDArray[np.uint8]:
        rgb = memo if memo.image.mode == "RGB" else memo.view("rgb", lambda im: im.convert("RGB"))
        box = rgb.value(
            ("unletterbox_box", self.threshold, self.color),
            lambda: unletterbox_box(np.asarray(rgb.image), self.threshold, self.color),
        )
        if box == (0, 0, *rgb.image.size):
            return rgb.hash(self.part)
        return rgb.view(("crop", box), lambda image: image.crop(box)).hash(self.part)


@POLICIES.register("gate")
@dataclass(frozen=True)
class Gate(Wrapper):
    """Hashes of images of PDQ quality below ``quality`` discarded (escapes counted as misses).

    PDQ's quality (0-100) measures how much detail the picture has; a discarded original is a
    counted exclusion, a discarded edited copy a miss in TPR."""

    name: ClassVar[str] = "gate"
    twice: ClassVar[str] = "gates what is already gated, where the stricter quality decides"
    quality: int = 50

    def __post_init__(self) -> None:
        super().__post_init__()
        check_int("quality", self.quality, owner="gate", min_value=0, max_value=100)

    def options(self) -> dict[str, Any]:
        return {"quality": self.quality}  # always shown: the gate is the policy

    def hash_shared(self, memo: SharedHashes) -> npt.NDArray[np.uint8]:
        from harness.algorithms.pdq import shared_pdq

        _, quality = shared_pdq(memo)
        if quality < self.quality:
            raise HashExcluded(f"PDQ quality {quality} is below the gate {self.quality}")
        return memo.hash(self.part)


# -- parsing ------------------------------------------------------------------------------------

_OPERATORS: dict[type[ast.operator], type[Fusion]] = {
    ast.BitAnd: And,
    ast.BitOr: Or,
    ast.Add: Sum,
}
EXAMPLE = "'pdq & phash', 'pdq<=31 | phash<=10', 'pdq + phash', 'dihedral(phash)'"


#: ``part<=N`` (a part's own threshold in a fusion) is read as ``part@N``: ``@`` binds tighter
#: than ``&``, ``|`` and ``+``, as the threshold does, where ``<=`` would bind looser.
_LIMIT = re.compile(r"<=\s*(\d+)")

#: The tokens of an expression; ``other`` is any character the language has no use for.
_TOKEN = re.compile(
    r"""\s*(?:(?P<word>\w+(?:\.\w*)?)|(?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")"""
    r"|(?P<limit><=)|(?P<op>[&|+])|(?P<open>[(\[{])|(?P<close>[)\]}])|(?P<punct>[,=])|(?P<other>\S))"
)


@dataclass
class _Level:
    """One level of an expression while it is read: the top, a parenthesis or a call."""

    opened: int  # where its "(" is (-1 at the top)
    call: bool
    op: str = ""  # the operator joining its parts so far
    parts: int = 0


def _check_shape(text: str) -> None:
    """Refuse an expression whose shape is wrong, naming the spot and the fix: unbalanced
    parentheses, a missing part, ``&``, ``|`` and ``+`` mixed without parentheses, a bad
    ``<=N``, too many parts or levels. One flat pass: long inputs cannot exhaust the stack."""
    _Shape(text).check()


class _Shape:
    """The one pass of :func:`_check_shape` over an expression's tokens."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = [
            (m.lastgroup or "", m.group(m.lastgroup or 0), m.start(m.lastgroup or 0))
            for m in _TOKEN.finditer(text)
        ]
        self.levels = [_Level(-1, call=False)]
        self.want = True  # a part is expected next (not an operator)

    def refuse(self, why: str) -> InvalidParameterError:
        return InvalidParameterError(f"Cannot parse {_quoted(self.text)}: {why}")

    def at(self, i: int) -> str:
        token = self.tokens[i][1]
        odd = next((c for c in token if not c.isascii()), None)  # a pasted look-alike
        plain = f" (U+{ord(odd):04X}, not plain ASCII)" if odd else ""
        return f"{token!r}{plain} at character {self.tokens[i][2] + 1}"

    def value(self, i: int) -> str:
        return self.tokens[i][1] if 0 <= i < len(self.tokens) else ""

    def check(self) -> None:
        tokens, i = self.tokens, 0
        if not tokens:
            raise self.refuse(
                "it is empty: write an algorithm such as 'phash' or a policy such as 'pdq & phash'."
            )
        while i < len(tokens):
            if self.want and self.levels[-1].call and self.value(i + 1) == "=":
                i = self.keyword(i)
            elif self.want:
                i = self.part(i)
            else:
                i = self.after_part(i)
        if self.want:
            raise self.refuse(
                f"{self.at(len(tokens) - 1)} has no part after it, e.g. 'pdq & phash'."
            )
        if len(self.levels) > 1:
            where = tokens[self.levels[-1].opened][2] + 1
            raise self.refuse(f"the '(' at character {where} is never closed: add a ')'.")

    def keyword(self, i: int) -> int:
        """Past a call's ``name=literal`` (the literal is judged when the call is built)."""
        depth, j = 0, i + 2
        while j < len(self.tokens) and not (depth == 0 and self.value(j) in (",", ")")):
            depth += {"open": 1, "close": -1}.get(self.tokens[j][0], 0)
            j += 1
        if j == i + 2:
            name = self.value(i)
            raise self.refuse(f"{name}= has no value: write {name}=<a value>.")
        self.want = False
        return j

    def part(self, i: int) -> int:
        """Where a part is expected: a name, a call or a parenthesis opens here, or the
        expression is refused with what is missing."""
        kind, value, _ = self.tokens[i]
        level, before = self.levels[-1], self.value(i - 1)
        if kind in ("word", "string") or value == "(":
            level.parts += 1
            if level.parts > MAX_PARTS:
                raise self.refuse(
                    f"more than {MAX_PARTS} parts in one fusion; a platform fuses a few "
                    "different hashes."
                )
            call = value != "(" and self.value(i + 1) == "("
            if value == "(" or call:
                i += call  # a call: its name, then its "("
                self.levels.append(_Level(i, call))
                if len(self.levels) > MAX_DEPTH:
                    raise self.refuse(f"nested more than {MAX_DEPTH} levels deep.")
            else:
                self.want = False
        elif value == ")" and before == "(" and level.call:
            self.levels.pop()  # "name()": an empty call, judged by what it names
            self.want = False
        elif value == ")" and before == "(":
            raise self.refuse(f"the '()' at character {self.tokens[i - 1][2] + 1} holds nothing.")
        elif kind == "op" and before == value:
            raise self.refuse(f"{value * 2!r} is not an operator: write a single {value!r}.")
        elif kind in ("op", "limit"):
            raise self.refuse(f"{self.at(i)} has no part before it, e.g. 'pdq {value} phash'.")
        elif i and self.tokens[i - 1][0] in ("op", "limit"):
            raise self.refuse(f"{self.at(i - 1)} has no part after it, e.g. 'pdq & phash'.")
        else:
            raise self.refuse(
                f"{self.at(i)} stands where an algorithm belongs, e.g. 'pdq & phash'."
            )
        return i + 1

    def after_part(self, i: int) -> int:
        """After a part: an operator, its threshold, a closing parenthesis or the next
        argument of a call."""
        kind, value, start = self.tokens[i]
        level = self.levels[-1]
        if kind == "op":
            if level.op and level.op != value:
                raise self.refuse(
                    f"{level.op!r} and {value!r} are mixed without parentheses; add them to "
                    f"say which goes first, e.g. '(pdq {level.op} phash) {value} dhash'."
                )
            level.op, self.want = value, True
        elif kind == "limit":
            bound = re.match(r"\s*([^\s&|+()<=]*)", self.text[start + 2 :])
            written = bound.group(1) if bound else ""
            if not written.isdigit() or self.value(i + 1) != written:
                raise self.refuse(
                    f"'<=' takes a whole number of levels from 0 up, e.g. 'pdq<=31 | phash<=10'; "
                    f"got {written or 'nothing'!r}."
                )
            if self.tokens[i + 2 : i + 3] and self.tokens[i + 2][0] == "limit":
                raise self.refuse("a part takes one threshold '<=N'.")
            i += 1
        elif value == ")" and len(self.levels) > 1:
            self.levels.pop()
        elif value == ")":
            raise self.refuse(f"{self.at(i)} closes no '(': remove it or add the '(' it closes.")
        elif value == "," and level.call:
            level.op, self.want = "", True  # each argument is an expression of its own
        else:
            raise self.refuse(
                f"{self.at(i)} follows a part without an operator: join parts with &, | or +."
            )
        return i + 1


def _limited(node: ast.expr, text: str) -> tuple[HashAlgorithm, int | None]:
    """A fusion's side: a part and its own threshold (``pdq<=31``), or a part alone."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.MatMult):
        if not (isinstance(node.right, ast.Constant) and type(node.right.value) is int):
            raise InvalidParameterError(
                f"Cannot parse {_quoted(text)}: write a part's threshold 'pdq<=31'."
            )
        return _build(node.left, text), node.right.value
    return _build(node, text), None


def _build(node: ast.expr, text: str) -> HashAlgorithm:
    if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
        cls = _OPERATORS[type(node.op)]
        sides: list[tuple[HashAlgorithm, int | None]] = []
        for side in (node.left, node.right):
            built, limit = _limited(side, text)
            if isinstance(built, cls) and limit is None:  # "a & b & c" is one AND of three
                own = built.limits or (None,) * len(built.parts)
                sides += list(zip(built.parts, own, strict=True))
            else:
                sides.append((built, limit))
        limits = [t for _, t in sides if t is not None]
        grouped = [p for p, t in sides if t is None and isinstance(p, Fusion) and p.limits]
        group = grouped[0] if grouped else None
        if limits and group is not None:
            raise InvalidParameterError(
                f"Cannot parse {_quoted(text)}: the group {_quoted(group.id)} has thresholds "
                "inside but none of its own, and beside parts with thresholds every part needs "
                "one; put the thresholds on one level, e.g. '(pdq<=31 & dhash<=5) | "
                "(phash<=10 & dhash<=5)' for '(pdq<=31 | phash<=10) & dhash<=5'."
            )
        if limits and len(limits) != len(sides):
            raise InvalidParameterError(
                f"Cannot parse {_quoted(text)}: give every part of a fusion its threshold "
                "('pdq<=31 & phash<=10') or none ('pdq & phash')."
            )
        return cls(parts=tuple(p for p, _ in sides), limits=tuple(limits))
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.MatMult):
        single = _build(node.left, text)
        raise InvalidParameterError(
            f"Cannot parse {_quoted(text)}: a threshold '<=N' is written on the parts of a "
            f"fusion ('pdq<=31 | phash<=10'); a single hash's thresholds go in [thresholds] "
            f'("{single.id}" = [N], N from 0 to {single.n_levels}) or threshold --at N.'
        )
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.args:
        if node.func.id not in POLICIES and node.func.id in ALGORITHMS:
            raise _positional(node, text)
        policy = POLICIES.get(node.func.id)
        check_once(node.keywords, text)
        params: dict[str, Any] = {}
        for kw in node.keywords:
            if kw.arg == "parts":
                raise InvalidParameterError(
                    f"Cannot parse {_quoted(text)}: a policy's parts are written first, "
                    f"unnamed, e.g. {EXAMPLE.split(', ')[-1]}."
                )
            params.update(keyword(kw, text))
        parts = [_build(a, text) for a in node.args]
        built = make_spec(POLICIES, policy.name, {**params, "parts": tuple(parts)})
        if (
            isinstance(built, Dihedral)
            and built.orientations == "native"
            and built.native in ALGORITHMS
        ):
            return make_policy_or_algorithm(built.id)  # one unit, registered under its own name
        return built
    if isinstance(node, ast.Name | ast.Call):
        return _algorithm(ast.unparse(node))
    raise InvalidParameterError(
        f"Cannot parse {_quoted(text)}: write an algorithm such as 'phash(hash_size=16)' or a "
        f"policy such as {EXAMPLE}."
    )


def _positional(node: ast.Call, text: str) -> InvalidParameterError:
    """An algorithm's parameters given by position (``phash(8)``): say the keyword form."""
    cls = ALGORITHMS.get(node.func.id)  # type: ignore[attr-defined]
    names = [f.name for f in dataclasses.fields(cls) if f.init]
    named = ", ".join(f"{n}={ast.unparse(a)}" for n, a in zip(names, node.args, strict=False))
    return InvalidParameterError(
        f"Cannot parse {_quoted(text)}: {cls.name}'s parameters are named, not positional: "
        f"write {cls.name}({named})."
    )


def make_policy_or_algorithm(text: str) -> HashAlgorithm:
    """``"phash"``, ``"phash(hash_size=16)"`` or a policy expression -> a constructed unit."""
    stripped = text.strip()
    _check_shape(stripped)
    try:
        node = ast.parse(_LIMIT.sub(r"@\1", stripped), mode="eval").body
    except SyntaxError:
        node = None
    if node is None or isinstance(node, ast.Name) or _plain_call(node):
        return _algorithm(text)
    return _build(node, stripped)


def _algorithm(text: str) -> HashAlgorithm:
    """A registered algorithm ``name`` or ``name(key=value, ...)``; a policy's name without
    the algorithm it works on is refused with how to write one."""
    name, params = parse_call(text, example="phash(hash_size=16)")
    if name not in ALGORITHMS and name in POLICIES:
        example = POLICIES.get(name)(parts=(ALGORITHMS.get("phash")(),)).id
        raise InvalidParameterError(
            f"{name} is a policy around an algorithm: name it in the parentheses, e.g. {example}."
        )
    return make_spec(ALGORITHMS, name, params)


def _plain_call(node: ast.expr) -> bool:
    """An algorithm with keyword parameters (not a policy over positional parts)."""
    return isinstance(node, ast.Call) and not node.args


__all__ = [
    "EXAMPLE",
    "MAX_GRID",
    "MAX_LCM",
    "ORIENTATIONS",
    "ORIENTATION_SOURCES",
    "POLICIES",
    "And",
    "Dihedral",
    "DihedralMetric",
    "Fusion",
    "Gate",
    "Or",
    "Policy",
    "Sum",
    "Unletterbox",
    "Wrapper",
    "dihedral_min",
    "make_policy_or_algorithm",
    "part_distances",
    "unletterbox_box",
]
