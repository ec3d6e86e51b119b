"""Conformance kit for plugin authors: run it in your own tests.

::

    from harness.testing import check_algorithm, check_transform

    def test_my_hash_conforms():
        check_algorithm(MyHash())            # or check_algorithm("my_hash(bits=128)")

    def test_my_edit_conforms():
        check_transform(MyEdit(strength=0.3))

Each check raises :class:`ConformanceError` (an ``AssertionError``, so pytest shows it as a
failed assertion) naming the broken promise; it returns normally when the unit keeps them all.
The harness runs the same checks over every built-in algorithm, policy and transform.
"""

from __future__ import annotations

import json
import pickle
import random
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image

from harness.algorithms.base import HashAlgorithm, make_algorithm
from harness.algorithms.policies import part_distances
from harness.algorithms.shared import SharedHashes
from harness.core.errors import HarnessError, HashExcluded


class ConformanceError(AssertionError):
    """A registered unit breaks a promise the harness relies on."""


def _require(condition: bool, unit: Any, message: str) -> None:
    if not condition:
        raise ConformanceError(f"{unit}: {message}")


def sample_images(n: int = 3, size: tuple[int, int] = (80, 60)) -> list[Image.Image]:
    """``n`` different RGB test pictures (smooth gradients with detail, no files needed)."""
    width, height = size
    y, x = np.mgrid[0:height, 0:width]
    out = []
    for seed in range(n):
        rng = np.random.default_rng(seed)
        img = np.zeros((height, width, 3))
        for c in range(3):
            fx, fy = rng.uniform(0.5, 4.0, 2).tolist()
            phase = float(rng.uniform(0, 6.28))
            img[..., c] = 127.5 + 127.5 * np.sin(
                2 * np.pi * (fx * x / width + fy * y / height) + phase
            )
        out.append(Image.fromarray(img.clip(0, 255).astype(np.uint8), mode="RGB"))
    return out


def check_algorithm(algo: HashAlgorithm | str, images: Sequence[Image.Image] | None = None) -> None:
    """Check that a hash algorithm (or policy) keeps the harness's promises.

    Parameters
    ----------
    algo : HashAlgorithm or str
        The constructed algorithm, or its spec text (``"phash(hash_size=16)"``).
    images : sequence of RGB images, optional
        At least two different pictures it can hash; default :func:`sample_images`.

    Checked: the declared row layout (``n_bytes`` uint8, zero padding bits for bit hashes);
    determinism; the bytes a run hashes through :meth:`~HashAlgorithm.hash_shared` equal
    :meth:`~HashAlgorithm.hash`'s; distances as int64 levels in ``[0, n_levels]`` with
    ``d(x, x) = 0``, and ``d(x, y) = d(y, x)`` unless the class declares ``symmetric = False``;
    the default threshold within the levels; the id naming the same algorithm when read back
    and ``to_dict`` being JSON; pickling (worker processes receive algorithms pickled); a JSON
    fingerprint naming the id and the installed version of every library it lists, and a code
    fingerprint.
    """
    if isinstance(algo, str):
        algo = make_algorithm(algo)
    _require(isinstance(algo, HashAlgorithm), algo, "is not a HashAlgorithm")
    pictures = list(images) if images is not None else sample_images()
    _require(len(pictures) >= 2, algo, "needs at least two images to check distances")
    _require(algo.n_levels >= 1, algo, f"n_levels must be at least 1, got {algo.n_levels}")
    _check_distances(algo, _checked_rows(algo, pictures))
    _check_identity(algo, pictures[0])


def _checked_rows(algo: HashAlgorithm, pictures: list[Image.Image]) -> npt.NDArray[np.uint8]:
    """The packed rows of the pictures ``algo`` does not exclude, each checked for layout,
    determinism and sharing."""
    rows = []
    for image in pictures:
        try:
            row = np.asarray(algo.hash(image))
        except HashExcluded:
            continue  # a counted exclusion (a quality gate) is a legal answer
        _require(row.dtype == np.uint8, algo, f"hash() returned {row.dtype}, not uint8")
        _require(
            row.shape == (algo.n_bytes,), algo, f"hash() shape {row.shape}, not ({algo.n_bytes},)"
        )
        again = np.asarray(algo.hash(image))
        _require(np.array_equal(row, again), algo, "hashing the same image twice differs")
        # A run hashes through hash_shared (a policy reads its parts' hashes once per picture):
        # its bytes must be hash()'s, or results would depend on which units share a suite.
        shared = np.asarray(SharedHashes(image).hash(algo))
        _require(np.array_equal(row, shared), algo, "hash_shared() differs from hash()")
        rows.append(row)
    _require(len(rows) >= 2, algo, "excluded all but one of the sample images")
    packed: npt.NDArray[np.uint8] = np.stack(rows)
    if algo.metric() is None:
        spare = np.unpackbits(packed, axis=1)[:, algo.n_bits :]
        _require(not spare.any(), algo, "padding bits beyond n_bits are not zero")
    return packed


def _check_distances(algo: HashAlgorithm, packed: npt.NDArray[np.uint8]) -> None:
    d = part_distances(algo, packed, packed)
    n = len(packed)
    _require(d.dtype == np.int64, algo, f"metric returned {d.dtype}, not int64")
    _require(d.shape == (n, n), algo, f"metric returned shape {d.shape}")
    _require(bool((np.diag(d) == 0).all()), algo, f"d(x, x) is not 0: {np.diag(d).tolist()}")
    _require(
        d.min() >= 0 and d.max() <= algo.n_levels,
        algo,
        f"distances {d.min()}..{d.max()} outside 0..{algo.n_levels}",
    )
    if getattr(algo, "symmetric", True):
        _require(
            np.array_equal(d, d.T),
            algo,
            "d(x, y) != d(y, x); declare symmetric = False for an asymmetric metric",
        )
    t = algo.default_threshold().bits
    _require(0 <= t <= algo.n_levels, algo, f"default threshold {t} outside 0..{algo.n_levels}")


def _check_identity(algo: HashAlgorithm, picture: Image.Image) -> None:
    """The id rebuilds the algorithm, it pickles, and its fingerprints say what it is."""
    if not algo.id_excludes:  # specs that leave out how a hash is obtained cannot rebuild it
        try:
            rebuilt = make_algorithm(algo.spec)
        except HarnessError as exc:
            raise ConformanceError(f"{algo}: its id does not rebuild it: {exc}") from exc
        _require(rebuilt == algo, algo, "its id does not rebuild the algorithm")
    _require(_is_json(algo.to_dict()), algo, "to_dict() is not JSON")
    copy = pickle.loads(pickle.dumps(algo))  # noqa: S301 - our own object, round-tripped
    _require(copy == algo, algo, "does not survive pickling")
    _require(np.array_equal(copy.hash(picture), algo.hash(picture)), algo, "pickled copy")

    fp = algo.fingerprint()
    _require(_is_json(fp), algo, "fingerprint() is not JSON")
    _require(fp.get("id") == algo.id, algo, "fingerprint() does not name the id")
    missing = [k for k, v in fp.get("libraries", {}).items() if v == "not installed"]
    _require(not missing, algo, f"fingerprint libraries not installed: {missing}")
    code = algo.code_fingerprint()
    _require(isinstance(code, str) and bool(code), algo, "code_fingerprint() is empty")


def check_transform(transform: Any, images: Sequence[Image.Image] | None = None) -> None:
    """Check that a transform keeps the harness's promises.

    Checked on every image: the output is RGB and of the size :meth:`output_size` announces;
    the same generator seed gives the same pixels; the input image is untouched; the global
    ``random`` and ``numpy.random`` states are never used; ``intensity`` lies in ``[0, 1]``;
    ``to_dict`` is JSON and reads back to an equal transform; the id parses back to it; it
    survives pickling with identical output.
    """
    from transforms import Transform, parse_chain

    _require(isinstance(transform, Transform), transform, "is not a Transform")
    t: Transform = transform
    _require(0.0 <= t.intensity <= 1.0, t, f"intensity {t.intensity} outside [0, 1]")
    copy = pickle.loads(pickle.dumps(t))  # noqa: S301 - our own object, round-tripped
    _require(copy == t, t, "does not survive pickling")
    pictures = images if images is not None else [*sample_images(2), *sample_images(1, (7, 5))]
    for image in pictures:
        before = image.tobytes()
        # The global states are read, never used: a transform that draws from them is the bug.
        py_state, np_state = random.getstate(), np.random.get_state()  # noqa: NPY002
        a = t.apply(image, np.random.default_rng(7))
        b = copy.apply(image, np.random.default_rng(7))
        _require(random.getstate() == py_state, t, "used the global random state")
        same_np = all(
            np.array_equal(x, y)
            for x, y in zip(np.random.get_state(), np_state, strict=True)  # noqa: NPY002
        )
        _require(same_np, t, "used the global numpy.random state")
        _require(image.tobytes() == before, t, "modified its input image")
        _require(a.mode == "RGB", t, f"returned mode {a.mode}, not RGB")
        size = t.output_size(image.size)
        _require(a.size == size, t, f"returned {a.size} for {image.size}, announced {size}")
        _require(a.tobytes() == b.tobytes(), t, "the same seed gave different pixels")
    _require(_is_json(t.to_dict()), t, "to_dict() is not JSON")
    try:  # last: an unregistered class fails here, after every check of its pixels
        _require(Transform.from_dict(t.to_dict()) == t, t, "to_dict() does not read back")
        _require(parse_chain(t.id).steps == (t,), t, "its id does not parse back to it")
    except HarnessError as exc:
        raise ConformanceError(f"{t}: its id or to_dict() does not read back: {exc}") from exc


def _is_json(value: Any) -> bool:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return False
    return True


__all__ = ["ConformanceError", "check_algorithm", "check_transform", "sample_images"]
