"""Which pairs count: positives and the negative protocols.

Positives
    each edited copy against its own original (one pair per source image and edit).
Negatives (different images; pairs whose images share a group label never count)
    ``originals_all_pairs``: every unordered pair of distinct originals - the collision rate of
    the corpus itself.
    ``edited_vs_other_originals``: each edited copy against every *other* original - the
    deployment case of an upload checked against a database of known hashes.
    ``edited_vs_edited``: every pair of edited copies of different images under the same edit -
    shared borders, overlays or heavy compression pull different images together.
    ``nearest_impostor``: per edited copy, only its closest *other* original - the retrieval view
    (a query is falsely matched when its best wrong candidate is within the threshold); one
    value per query, so rates are over queries, not pairs.

Group labels are the source image's index, merged across near duplicates by corpus hygiene.
Distances are Hamming unless the algorithm supplies a ``metric`` (distance levels, 0 = same);
edited copies are always the query side, originals the reference side.
Images excluded from evaluation (failed decodes, exact duplicates) take part in no pair; a hash
that failed for one algorithm removes only that algorithm's pairs for that image.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from harness import kernels
from harness.kernels import Metric
from harness.metrics import histogram

PROTOCOLS = {
    "originals_all_pairs": "every unordered pair of distinct original images",
    "edited_vs_other_originals": (
        "each edited copy against every other original (upload vs database)"
    ),
    "edited_vs_edited": "every pair of edited copies of different images under the same edit",
    "nearest_impostor": (
        "each edited copy against its closest other original only (retrieval view; "
        "rates are per query)"
    ),
}

#: Protocols computed for each (algorithm, transform) cell.
CELL_PROTOCOLS = ("edited_vs_other_originals", "edited_vs_edited", "nearest_impostor")

Packed = npt.NDArray[np.uint8]
Mask = npt.NDArray[np.bool_]
Labels = npt.NDArray[np.int64]
Hist = npt.NDArray[np.int64]


def positive_distances(
    originals: Packed, edited: Packed, usable: Mask, metric: Metric | None = None
) -> npt.NDArray[np.int64]:
    """Distance of each usable edited copy (query) to its own original, in image order."""
    return kernels.hamming(edited[usable], originals[usable], metric)


def originals_all_pairs(
    originals: Packed, usable: Mask, n_bits: int, groups: Labels, metric: Metric | None = None
) -> Hist:
    """Histogram over unordered pairs of usable originals in different groups."""
    return kernels.all_pairs_histogram(originals[usable], n_bits, groups[usable], metric=metric)


def edited_vs_other_originals(
    originals: Packed,
    originals_usable: Mask,
    edited: Packed,
    edited_usable: Mask,
    n_bits: int,
    groups: Labels,
    metric: Metric | None = None,
) -> Hist:
    """Histogram over (edited copy of i, original j) pairs with i and j in different groups."""
    return kernels.cross_histogram(
        edited[edited_usable],
        originals[originals_usable],
        n_bits,
        query_groups=groups[edited_usable],
        reference_groups=groups[originals_usable],
        metric=metric,
    )


def edited_vs_edited(
    edited: Packed, edited_usable: Mask, n_bits: int, groups: Labels, metric: Metric | None = None
) -> Hist:
    """Histogram over unordered pairs of edited copies (same edit) of different groups."""
    return kernels.all_pairs_histogram(
        edited[edited_usable], n_bits, groups[edited_usable], metric=metric
    )


def nearest_impostor(
    originals: Packed,
    originals_usable: Mask,
    edited: Packed,
    edited_usable: Mask,
    groups: Labels,
    metric: Metric | None = None,
) -> list[tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]]:
    """Per edit ``t`` and usable edited copy: distance to, and image index of, its closest
    other original.

    ``edited`` has shape ``(n_edits, n_images, n_bytes)`` and ``edited_usable`` ``(n_edits,
    n_images)``: every edit's queries go through the kernel in one call (one call per cell was
    dominated by the per-call cost on small corpora); a query's answer does not depend on the
    other queries, so the results are those of one call per edit. Queries with no eligible
    original get distance -1 and index -1.
    """
    ref_index = np.flatnonzero(originals_usable)
    dist, nearest = kernels.nearest_impostor(
        edited[edited_usable],
        originals[ref_index],
        np.broadcast_to(groups, edited_usable.shape)[edited_usable],
        groups[ref_index],
        metric=metric,
    )
    index = np.where(nearest >= 0, ref_index[np.maximum(nearest, 0)], -1)
    bounds = np.cumsum(edited_usable.sum(axis=1))[:-1]
    return list(zip(np.split(dist, bounds), np.split(index, bounds), strict=True))


def nearest_impostor_histogram(distances: npt.NDArray[np.int64], n_bits: int) -> Hist:
    """Histogram of nearest-impostor distances over the queries that had one."""
    return histogram(distances[distances >= 0], n_bits)
