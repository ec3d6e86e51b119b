"""Which pairs count: positives and the negative protocols.

Positives
    each edited copy against its own original (one pair per source image and edit).
Negatives
    ``originals_all_pairs``: every unordered pair of distinct originals - the collision rate of
    the corpus itself; ``edited_vs_other_originals``: each edited copy against every *other*
    original - the deployment case of an upload checked against a database of known hashes.

Images excluded from evaluation (failed decodes, exact duplicates) take part in no pair; a hash
that failed for one algorithm removes only that algorithm's pairs for that image.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from harness import kernels

PROTOCOLS = {
    "originals_all_pairs": "every unordered pair of distinct original images",
    "edited_vs_other_originals": (
        "each edited copy against every other original (upload vs database)"
    ),
}


def positive_distances(
    originals: npt.NDArray[np.uint8],
    edited: npt.NDArray[np.uint8],
    usable: npt.NDArray[np.bool_],
) -> npt.NDArray[np.int64]:
    """Distance of each usable edited copy to its own original, in image order."""
    return kernels.hamming(originals[usable], edited[usable])


def originals_all_pairs(
    originals: npt.NDArray[np.uint8], usable: npt.NDArray[np.bool_], n_bits: int
) -> npt.NDArray[np.int64]:
    """Histogram over unordered pairs of distinct usable originals."""
    return kernels.all_pairs_histogram(originals[usable], n_bits)


def edited_vs_other_originals(
    originals: npt.NDArray[np.uint8],
    originals_usable: npt.NDArray[np.bool_],
    edited: npt.NDArray[np.uint8],
    edited_usable: npt.NDArray[np.bool_],
    n_bits: int,
) -> npt.NDArray[np.int64]:
    """Histogram over (edited copy of i, original j) pairs with ``i != j``."""
    index = np.arange(len(originals))
    return kernels.cross_histogram(
        edited[edited_usable],
        originals[originals_usable],
        n_bits,
        query_groups=index[edited_usable],
        reference_groups=index[originals_usable],
    )
