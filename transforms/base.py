"""Transform and Chain: frozen, validated, registered edits with canonical ids and per-cell seeds.

A transform is a frozen dataclass of parameters. It validates them when constructed, so a bad suite
fails before any pixel is touched, and it has a canonical id such as
``jpeg(quality=50,subsampling='4:2:0')`` that names it in suites, results and reports. A chain of
transforms is written ``resize(scale=0.5)|jpeg(quality=70)``.

Randomness comes only from the ``numpy.random.Generator`` handed to :meth:`Transform.apply`, seeded
per cell by :func:`cell_seed`; nothing here touches the global ``random`` or ``numpy.random`` state.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

import numpy as np
from PIL import Image

from harness.core.errors import InvalidParameterError
from harness.core.params import declared_params
from harness.core.registry import Registry
from harness.core.spec import Spec, make_spec, parse_call, spec_from_dict

TRANSFORMS: Registry[type[Transform]] = Registry("transform", "hash_harness.transforms")


def cell_seed(suite_seed: int, image_id: str, chain_id: str, step: int) -> int:
    """Seed for one step of one chain applied to one image.

    ``blake2b(suite_seed | image_id | chain_id | step)``: stable across processes and machines
    (unlike Python's salted ``hash()``); adding a cell to a suite never changes another's seed.
    """
    key = f"{suite_seed}|{image_id}|{chain_id}|{step}".encode()
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big")


@dataclasses.dataclass(frozen=True)
class Transform(Spec):
    """Base class of every registered edit.

    Subclasses are frozen dataclasses registered with ``@TRANSFORMS.register("name")`` (which
    sets ``name``), whose fields are the parameters declared with
    :func:`~harness.core.params.param` (validated on construction; checks across parameters go
    in ``validate``); they implement :meth:`_apply` and :meth:`output_size`.
    """

    #: Whether :meth:`apply` draws from its generator (deterministic transforms ignore it).
    uses_rng: ClassVar[bool] = False
    #: One line on the real-world action this models, shown by ``hash-harness list transforms``.
    models: ClassVar[str] = ""
    #: What ``intensity`` measures, for the catalogue table, where it is not simply the formula
    #: of the parameters' declared ``intensity`` mappings (see :meth:`intensity_formula`).
    intensity_meaning: ClassVar[str] = ""
    #: False when output pixels depend on library builds beyond Pillow's version (AVIF encoder,
    #: FreeType text rendering): such transforms are left out of exact golden digests.
    stable_pixels: ClassVar[bool] = True

    def draw(self, size: tuple[int, int], rng: np.random.Generator) -> dict[str, Any]:
        """The random choices for an input of ``size`` (positions, noise seeds...), JSON-ready.

        Randomised transforms draw everything here and nowhere else, so the realised parameters
        can be recorded and replayed: ``render(image, draw(image.size, rng))`` is the output.
        """
        return {}

    def render(self, image: Image.Image, drawn: Mapping[str, Any]) -> Image.Image:
        """Apply with the choices ``drawn`` (randomised transforms implement this)."""
        raise NotImplementedError

    def applied(self, size: tuple[int, int], rng: np.random.Generator) -> dict[str, Any]:
        """Parameters actually applied to an input of ``size``: the fixed ones plus the draws."""
        return {**self.params(), **self.draw(size, rng)}

    def _apply(self, image: Image.Image, rng: np.random.Generator) -> Image.Image:
        return self.render(image, self.draw(image.size, rng))

    def output_size(self, size: tuple[int, int]) -> tuple[int, int]:
        """Size ``(width, height)`` of the output for an input of ``size``."""
        return size

    @property
    def intensity(self) -> float:
        """Severity in [0, 1]: 0 leaves the image as it is, 1 is the harshest setting offered.

        The largest over the parameters declared with an ``intensity`` mapping (0 without any);
        a transform whose severity combines parameters otherwise overrides this.
        """
        mapped = [
            p.intensity(getattr(self, name))
            for name, p in declared_params(self).items()
            if p.intensity is not None
        ]
        return max(mapped, default=0.0)

    @classmethod
    def intensity_formula(cls) -> str:
        """What :attr:`intensity` measures: ``intensity_meaning`` if the class states it, else
        the formula of its declared mappings (``|degrees| / 45``)."""
        if cls.intensity_meaning:
            return cls.intensity_meaning
        terms = [
            p.intensity.describe(name, p)
            for name, p in declared_params(cls).items()
            if p.intensity is not None
        ]
        if len(terms) > 1:
            return f"max({', '.join(terms)})"
        return terms[0] if terms else ""

    def apply(self, image: Image.Image, rng: np.random.Generator | None = None) -> Image.Image:
        """Return the edited copy of an RGB ``image``; ``image`` itself is not modified."""
        if image.mode != "RGB":
            raise InvalidParameterError(
                f"{self.name} expects an RGB image. Got mode {image.mode!r} instead."
            )
        if rng is None:
            if self.uses_rng:
                raise InvalidParameterError(f"{self.name} draws random numbers: pass an rng.")
            rng = np.random.default_rng(0)  # never read; keeps _apply's signature simple
        out = self._apply(image, rng)
        return out if out.mode == "RGB" else out.convert("RGB")

    @staticmethod
    def from_dict(data: Mapping[str, Any]) -> Transform:
        """Inverse of :meth:`to_dict`; refuses a version other than the installed one."""
        return spec_from_dict(TRANSFORMS, data)


def make_transform(name: str, params: Mapping[str, Any]) -> Transform:
    """Construct the registered transform ``name`` with ``params``, with helpful errors."""
    return make_spec(TRANSFORMS, name, params)


@dataclasses.dataclass(frozen=True)
class Chain:
    """An ordered sequence of transforms applied one after another."""

    steps: tuple[Transform, ...]
    #: Display name, e.g. "preset:whatsapp_like"; the id stays the canonical chain of steps.
    label: str | None = dataclasses.field(default=None, compare=False)

    def __post_init__(self) -> None:
        if not self.steps:
            raise InvalidParameterError("A chain needs at least one transform (use 'identity').")

    @property
    def display(self) -> str:
        """The label if there is one, else the id."""
        return self.label or self.id

    @property
    def id(self) -> str:
        """Canonical id: the steps' ids joined with ``|``."""
        return "|".join(t.id for t in self.steps)

    @property
    def version(self) -> str:
        """Versions of the steps, e.g. ``"1|1"``; part of every cache and comparison key."""
        return "|".join(str(t.version) for t in self.steps)

    @property
    def intensity(self) -> float:
        """The largest step intensity (a chain is at least as harsh as its harshest step)."""
        return max(t.intensity for t in self.steps)

    def output_size(self, size: tuple[int, int]) -> tuple[int, int]:
        for t in self.steps:
            size = t.output_size(size)
        return size

    def apply(self, image: Image.Image, *, suite_seed: int, image_id: str) -> Image.Image:
        """Apply every step, each with its own generator seeded by :func:`cell_seed`."""
        chain_id = self.id
        for step, transform in enumerate(self.steps):
            rng = np.random.default_rng(cell_seed(suite_seed, image_id, chain_id, step))
            image = transform.apply(image, rng)
        return image

    def applied(
        self, size: tuple[int, int], *, suite_seed: int, image_id: str
    ) -> list[dict[str, Any]]:
        """Every step's applied parameters for an image of ``size`` (no pixels needed)."""
        out = []
        for step, transform in enumerate(self.steps):
            rng = np.random.default_rng(cell_seed(suite_seed, image_id, self.id, step))
            out.append({"name": transform.name, **transform.applied(size, rng)})
            size = transform.output_size(size)
        return out

    def to_list(self) -> list[dict[str, Any]]:
        return [t.to_dict() for t in self.steps]

    def __iter__(self) -> Iterator[Transform]:
        return iter(self.steps)

    def __str__(self) -> str:
        return self.id


def _parse_step(text: str) -> Transform:
    if not text.strip():
        raise InvalidParameterError("Empty step in transform chain (two '|' in a row?).")
    return make_transform(*parse_call(text, example="jpeg(quality=70)"))


def split_steps(text: str) -> list[str]:
    """Split on ``|`` outside parentheses and quotes, so string parameters may contain it."""
    parts, depth, quote, start = [], 0, "", 0
    for i, ch in enumerate(text):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "|" and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


def parse_chain(text: str) -> Chain:
    """Parse ``"resize(scale=0.5)|jpeg(quality=70)"`` into a :class:`Chain`."""
    return Chain(tuple(_parse_step(part) for part in split_steps(text)))
