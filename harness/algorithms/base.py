"""HashAlgorithm: the adapter interface every hash family implements.

An adapter is a frozen dataclass of its parameters (a :class:`~harness.core.spec.Spec`) that
turns an RGB ``PIL.Image`` into ``n_bits`` bits, returned packed with :func:`numpy.packbits` (MSB
first, zero-padded to whole bytes so XOR + popcount of two rows is the Hamming distance).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
from PIL import Image

from harness.algorithms.shared import SharedHashes
from harness.core.errors import HarnessError, InvalidParameterError, UnknownNameError
from harness.core.params import MAX_IDENTIFIER, is_identifier, shown
from harness.core.registry import Registry
from harness.core.spec import Spec, parse_call
from harness.kernels import Metric

ALGORITHMS: Registry[type[HashAlgorithm]] = Registry("algorithm", "hash_harness.algorithms")


@dataclass(frozen=True)
class OperatingThreshold:
    """A published or conventional match threshold: distance <= ``bits`` counts as a match."""

    bits: int
    source: str


def distribution_version(name: str) -> str:
    """Installed version of a distribution, or ``"not installed"``."""
    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


@dataclass(frozen=True)
class HashAlgorithm(Spec):
    """Base class of hash adapters."""

    #: Ids name only non-default parameters: "phash", "phash(hash_size=16)".
    always_shown: ClassVar[tuple[str, ...] | None] = ()

    #: Distance between two hashes; every built-in adapter is a bit hash compared by Hamming.
    distance: ClassVar[str] = "hamming"
    #: False when ``metric(a, b)`` may differ from ``metric(b, a)`` (the query and the reference
    #: play different roles, as in dihedral matching); checked by :mod:`harness.testing`.
    symmetric: ClassVar[bool] = True
    #: Distributions whose versions can change the bits (recorded in :meth:`fingerprint`).
    libraries: ClassVar[tuple[str, ...]] = ()
    #: Parameter sets worth exercising (tests, documentation); empty = the defaults only.
    examples: ClassVar[tuple[str, ...]] = ()
    #: The optional extra that provides the library (``pip install 'hash-harness[extra]'``).
    extra: ClassVar[str | None] = None
    #: False when the bits can change without any version the fingerprint records (an external
    #: vendor binary): such hashes are never served from the cache.
    cacheable: ClassVar[bool] = True
    #: False for adapters that need configuration to exist at all (an external command, an
    #: imported hash file): they are left out of "every algorithm" sets such as the goldens.
    standalone: ClassVar[bool] = True

    @property
    def spec(self) -> str:
        """The text that rebuilds this algorithm with :func:`make_algorithm`: its id, except for
        adapters named by a label (:class:`LabelledAlgorithm`)."""
        return self.id

    @property
    def n_bits(self) -> int:
        """Number of bits in one hash."""
        raise NotImplementedError

    @property
    def n_bytes(self) -> int:
        """Bytes in one packed hash row."""
        return (self.n_bits + 7) // 8

    #: What one distance level means in reports ("bits" for Hamming).
    level_unit: ClassVar[str] = "bits"

    @property
    def n_levels(self) -> int:
        """Largest distance level; histograms have ``n_levels + 1`` bins (Hamming: n_bits)."""
        return self.n_bits

    def metric(self) -> Metric | None:
        """Distance between rows of hashes as integer levels (0 = identical), or None for
        Hamming on packed bits. ``metric(queries, references)`` -> int64 matrix; the query is
        the edited copy / upload, the reference the database entry (it may be asymmetric)."""
        return None

    def hash_bits(self, image: Image.Image) -> npt.NDArray[np.bool_]:
        """Hash an RGB image to a boolean vector of shape ``(n_bits,)``."""
        raise NotImplementedError

    def hash(self, image: Image.Image) -> npt.NDArray[np.uint8]:
        """Hash an RGB image to a packed row of shape ``(n_bytes,)``."""
        bits = np.asarray(self.hash_bits(image), dtype=bool).reshape(-1)
        if bits.size != self.n_bits:
            raise RuntimeError(f"{self.id} produced {bits.size} bits, declared {self.n_bits}")
        return np.packbits(bits)

    def hash_shared(self, memo: SharedHashes) -> npt.NDArray[np.uint8]:
        """:meth:`hash` of ``memo.image``, reading what other units already computed from the
        same picture through ``memo`` (a policy's parts; see :mod:`harness.algorithms.shared`).
        The hashing pass calls this; the bytes must be those of :meth:`hash`."""
        return self.hash(memo.image)

    def operating_thresholds(self) -> tuple[OperatingThreshold, ...]:
        """Usual operating point(s) with their source; the first is the default threshold."""
        return ()

    def default_threshold(self) -> OperatingThreshold:
        """The first operating threshold, or about 10% of the bits when none is published."""
        published = self.operating_thresholds()
        if published:
            return published[0]
        return OperatingThreshold(
            round(0.1 * self.n_levels), f"no published value: 10% of the {self.n_levels} levels"
        )

    def code_fingerprint(self) -> str:
        """Fingerprint of the code that computes the bits (see :mod:`harness.codehash`): part
        of the cache key, so that an edited adapter or plugin never reuses old hashes."""
        from harness.codehash import class_fingerprint

        cls: type = type(self)  # a class object is hashable whatever its instances are
        return class_fingerprint(cls)

    def fingerprint(self) -> dict[str, Any]:
        """Everything that determines the bits: id, adapter version, library versions."""
        return {
            "id": self.id,
            "version": self.version,
            "libraries": {lib: distribution_version(lib) for lib in self.libraries},
        }


class LabelledAlgorithm(HashAlgorithm):
    """An adapter that exists only as configured (a vendor's command, a vendor's imported
    hashes), named by its short ``label`` wherever results name algorithms: ``acme`` in every
    table, report and comparison rather than ``external(bits=64,label='acme')``.

    The full spec the label stands for (:attr:`spec`) is recorded in :meth:`fingerprint`, which
    results keep beside the id and which is part of the cache key, so a changed length or
    measure never passes for the same hash. A label may not be the name of a registered algorithm
    or policy (``phash`` must always mean pHash); :meth:`check_label` refuses it.
    """

    label: str

    @property
    def id(self) -> str:
        return self.label

    @property
    def spec(self) -> str:
        return super().id  # the canonical name(key=value,...) of Spec.id

    def check_label(self) -> None:
        """Refuse a label that is not an identifier or that names a registered algorithm or
        policy (case-insensitively, as names are looked up)."""
        from harness.algorithms.policies import POLICIES

        if not is_identifier(self.label):
            raise InvalidParameterError(
                f"The 'label' parameter of {self.name} must be an identifier of at most "
                f"{MAX_IDENTIFIER} characters. Got {shown(self.label)} instead."
            )
        for registry in (ALGORITHMS, POLICIES):
            try:
                taken = registry.canonical(self.label)
            except UnknownNameError:
                continue
            raise InvalidParameterError(
                f"The label {self.label!r} of {self.name} is the name of the {registry.kind} "
                f"{taken!r}; results would confuse the two: choose another label."
            )

    def fingerprint(self) -> dict[str, Any]:
        return {**super().fingerprint(), "spec": self.spec}


def former_label(algorithm_id: str) -> str | None:
    """The label of an id in the form results used before labelled adapters were named by their
    label (``external(bits=64,label='acme')`` -> ``acme``), else None."""
    try:
        name, params = parse_call(algorithm_id, "acme")
        cls = ALGORITHMS.get(name)
    except HarnessError:  # not a spec (a policy's id), or not a registered name
        return None
    label = params.get("label")
    return label if issubclass(cls, LabelledAlgorithm) and isinstance(label, str) else None


def make_algorithm(text: str) -> HashAlgorithm:
    """``"phash"``, ``"phash(hash_size=16)"`` or a matching policy such as ``"pdq & phash"``
    (see :mod:`harness.algorithms.policies`) -> a constructed adapter."""
    from harness.algorithms.policies import make_policy_or_algorithm

    return make_policy_or_algorithm(text)
