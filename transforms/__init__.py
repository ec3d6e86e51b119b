"""The transform catalogue: registered, validated, frozen edits.

Importing this package registers every built-in transform in :data:`TRANSFORMS`.
"""

from transforms import codec, decode, geometry, overlay, photometric
from transforms.base import TRANSFORMS, Chain, Transform, cell_seed, parse_chain

__all__ = [
    "TRANSFORMS",
    "Chain",
    "Transform",
    "cell_seed",
    "codec",
    "decode",
    "geometry",
    "overlay",
    "parse_chain",
    "photometric",
]
