"""Severity ladders, named presets, the selection syntax, and the catalogue table.

Severity ladders
    Every graded family has five levels S1..S5 (S1 barely visible, S5 the harshest setting that
    still models a benign re-upload) plus a fine grid for sweeps, dense near zero for geometry.
    Values follow ``research/transforms.md`` section 6.
Presets
    Named chains modelling whole re-upload pipelines (platforms, screenshots, memes); they live
    in :mod:`transforms.presets`.
Selection
    Wherever a transform chain is accepted (suites, ``--transforms``), these also work:
    ``crop@S1-S5``, ``jpeg@S3``, ``rotate@S1,S3``, ``pad@fine``, ``preset:whatsapp_like``.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from harness.core.errors import InvalidParameterError, UnknownNameError
from harness.core.params import declared
from transforms.base import TRANSFORMS, Chain, Transform, make_transform, parse_chain, split_steps
from transforms.presets import PRESETS, preset


@dataclass(frozen=True)
class Ladder:
    """One graded family: ``transform`` with ``param`` stepped over ``levels`` (S1..S5)."""

    transform: str
    param: str
    levels: tuple[Any, ...]
    fine: tuple[Any, ...]
    fixed: Mapping[str, Any] = field(default_factory=dict)
    note: str = ""

    def step(self, value: Any) -> Transform:
        return make_transform(self.transform, {**self.fixed, self.param: value})


LADDERS: dict[str, Ladder] = {
    # Codecs: coarse grids; they matter for drift and collisions more than for robustness.
    "jpeg": Ladder(
        "jpeg", "quality", (90, 75, 50, 30, 10), (95, 90, 85, 80, 75, 70, 60, 50, 40, 30, 20, 10)
    ),
    "jpeg_generations": Ladder(
        "jpeg_generations", "n", (2, 3, 5, 10, 20), (2, 3, 5, 10, 20), {"quality": 75, "jitter": 1}
    ),
    "webp": Ladder(
        "webp", "quality", (90, 80, 70, 50, 30), (95, 90, 80, 70, 60, 50, 40, 30, 20, 10)
    ),
    "avif": Ladder("avif", "quality", (80, 60, 45, 30, 20), (90, 80, 70, 60, 45, 30, 20, 10)),
    "palette": Ladder("palette", "colors", (256, 128, 64, 32, 16), (256, 128, 64, 32, 16, 8, 4)),
    # Resampling.
    "resize": Ladder(
        "resize",
        "scale",
        (0.75, 0.5, 0.33, 0.2, 0.1),
        (0.9, 0.75, 0.5, 0.33, 0.25, 0.2, 0.1, 1.5, 2.0, 4.0),
    ),
    "down_up": Ladder(
        "down_up", "factor", (0.75, 0.5, 0.33, 0.25, 0.1), (0.9, 0.75, 0.5, 0.33, 0.25, 0.2, 0.1)
    ),
    "thumbnail": Ladder(
        "thumbnail",
        "long_side",
        (480, 320, 256, 160, 128),
        (1080, 720, 480, 320, 256, 160, 128, 64),
    ),
    "aspect_stretch": Ladder(
        "aspect_stretch",
        "ratio",
        (1.05, 1.1, 1.25, 1.5, 2.0),
        (1.02, 1.05, 1.1, 1.25, 1.5, 2.0, 0.95, 0.9, 0.8, 0.67, 0.5),
    ),
    # Geometry: dense near zero, where thresholds are crossed.
    "crop": Ladder(
        "crop",
        "keep_area",
        (0.95, 0.9, 0.81, 0.64, 0.5),
        (0.99, 0.98, 0.96, 0.95, 0.92, 0.9, 0.85, 0.81, 0.75, 0.7, 0.64, 0.6, 0.5),
        note="centred window, aspect kept; keep_area is the fraction of the area kept",
    ),
    "crop_corner": Ladder(
        "crop",
        "keep_area",
        (0.9, 0.8, 0.64, 0.5, 0.3),
        (0.99, 0.95, 0.9, 0.8, 0.7, 0.64, 0.5, 0.4, 0.3),
        {"anchor": "top_left"},
        "window at the top left: the right and bottom are cut off",
    ),
    "pad": Ladder(
        "pad",
        "fraction",
        (0.02, 0.05, 0.1, 0.2, 0.4),
        (0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4),
    ),
    "rotate": Ladder(
        "rotate",
        "degrees",
        (1.0, 3.0, 5.0, 10.0, 20.0),
        (0.5, 1.0, 2.0, 3.0, 5.0, 7.5, 10.0, 15.0, 20.0, 30.0, 45.0),
    ),
    "perspective": Ladder(
        "perspective",
        "max_shift",
        (0.02, 0.04, 0.07, 0.1, 0.15),
        (0.01, 0.02, 0.04, 0.07, 0.1, 0.15, 0.2),
    ),
    "shear": Ladder(
        "shear", "factor", (0.05, 0.1, 0.15, 0.2, 0.3), (0.02, 0.05, 0.1, 0.15, 0.2, 0.3)
    ),
    "translate": Ladder(
        "translate", "dx", (0.01, 0.02, 0.05, 0.1, 0.2), (0.005, 0.01, 0.02, 0.05, 0.1, 0.2)
    ),
    # Photometric.
    "brightness": Ladder(
        "brightness",
        "factor",
        (1.1, 1.2, 1.3, 1.45, 1.6),
        (1.1, 1.2, 1.3, 1.45, 1.6, 0.9, 0.8, 0.7, 0.55, 0.4),
    ),
    "contrast": Ladder(
        "contrast",
        "factor",
        (1.1, 1.2, 1.3, 1.45, 1.6),
        (1.1, 1.2, 1.3, 1.45, 1.6, 0.9, 0.8, 0.7, 0.55, 0.4),
    ),
    "saturation": Ladder(
        "saturation", "factor", (1.25, 1.5, 0.5, 0.25, 0.0), (1.25, 1.5, 2.0, 0.75, 0.5, 0.25, 0.0)
    ),
    "gamma": Ladder(
        "gamma",
        "gamma",
        (1.1, 1.25, 1.5, 2.0, 2.5),
        (1.1, 1.25, 1.5, 2.0, 2.5, 0.9, 0.8, 0.67, 0.5, 0.4),
    ),
    "hue_shift": Ladder(
        "hue_shift",
        "degrees",
        (5.0, 10.0, 30.0, 90.0, 180.0),
        (5.0, 10.0, 20.0, 30.0, 60.0, 90.0, 180.0),
    ),
    "gaussian_blur": Ladder(
        "gaussian_blur",
        "radius",
        (0.001, 0.002, 0.004, 0.006, 0.01),
        (0.0005, 0.001, 0.002, 0.004, 0.006, 0.01, 0.02),
    ),
    "motion_blur": Ladder(
        "motion_blur",
        "length",
        (0.005, 0.01, 0.02, 0.03, 0.05),
        (0.005, 0.01, 0.02, 0.03, 0.05, 0.08),
    ),
    "sharpen": Ladder(
        "sharpen", "percent", (50, 100, 150, 250, 400), (50, 100, 150, 250, 400, 600)
    ),
    "gaussian_noise": Ladder(
        "gaussian_noise",
        "sigma",
        (2.0, 5.0, 10.0, 15.0, 25.0),
        (1.0, 2.0, 5.0, 10.0, 15.0, 25.0, 40.0),
    ),
    "salt_pepper": Ladder(
        "salt_pepper",
        "amount",
        (0.001, 0.005, 0.01, 0.03, 0.05),
        (0.001, 0.005, 0.01, 0.03, 0.05, 0.1),
    ),
    "shuffle_pixels": Ladder(
        "shuffle_pixels",
        "amount",
        (0.005, 0.01, 0.02, 0.05, 0.1),
        (0.005, 0.01, 0.02, 0.05, 0.1, 0.2),
    ),
    "pixelize": Ladder(
        "pixelize",
        "block",
        (1 / 256, 1 / 128, 1 / 64, 1 / 32, 1 / 16),
        (1 / 512, 1 / 256, 1 / 128, 1 / 64, 1 / 32, 1 / 16, 1 / 8),
    ),
    "posterize": Ladder("posterize", "bits", (6, 5, 4, 3, 2), (7, 6, 5, 4, 3, 2, 1)),
    "opacity": Ladder(
        "opacity", "alpha", (0.9, 0.8, 0.65, 0.5, 0.35), (0.95, 0.9, 0.8, 0.65, 0.5, 0.35, 0.2)
    ),
    # Overlays (the DISC21-style tier).
    "text": Ladder(
        "text", "height", (0.04, 0.07, 0.1, 0.15, 0.25), (0.02, 0.04, 0.07, 0.1, 0.15, 0.25, 0.35)
    ),
    "caption_bar": Ladder(
        "caption_bar", "height", (0.1, 0.15, 0.2, 0.3, 0.5), (0.05, 0.1, 0.15, 0.2, 0.3, 0.5)
    ),
    "watermark": Ladder(
        "watermark", "opacity", (0.15, 0.25, 0.4, 0.6, 0.8), (0.1, 0.15, 0.25, 0.4, 0.6, 0.8, 1.0)
    ),
    "stickers": Ladder(
        "stickers", "size", (0.05, 0.1, 0.15, 0.25, 0.4), (0.05, 0.1, 0.15, 0.25, 0.4, 0.5)
    ),
    "stripes": Ladder(
        "stripes", "density", (0.1, 0.2, 0.3, 0.5, 0.7), (0.05, 0.1, 0.2, 0.3, 0.5, 0.7)
    ),
    "screenshot_frame": Ladder(
        "screenshot_frame", "area", (0.9, 0.75, 0.6, 0.45, 0.3), (0.95, 0.9, 0.75, 0.6, 0.45, 0.3)
    ),
    "picture_in_picture": Ladder(
        "picture_in_picture",
        "scale",
        (0.9, 0.75, 0.6, 0.45, 0.3),
        (0.95, 0.9, 0.75, 0.6, 0.45, 0.3, 0.2),
    ),
}

#: Families without a severity axis: named variants rather than levels.
CATEGORICAL: dict[str, tuple[str, ...]] = {
    "flip": ("hflip", "vflip"),
    "rotate90": ("rotate90(k=1)", "rotate90(k=2)", "rotate90(k=3)"),
    "grayscale": ("grayscale", "grayscale(method='average')"),
    "filter_preset": tuple(
        f"filter_preset(preset={p!r})"
        for p in ("sepia", "warm", "cool", "fade", "vignette", "autocontrast", "equalize")
    ),
    "exif_ignored": tuple(f"exif_ignored(tag={t})" for t in (6, 8, 3, 2, 5, 7, 4)),
    "mode_path": tuple(
        f"mode_path(path={p!r})" for p in ("i16_clip", "i16_shift", "palette_web", "la")
    ),
    "alpha_background": (
        "alpha_background(background='black')",
        "alpha_background(background='white')",
    ),
    "resample": tuple(
        f"resample(method={m!r})"
        for m in ("nonaa_bilinear", "linear_light", "reducing_gap", "reduce_box")
    ),
    "draft_decode": ("draft_decode(reduce=2)", "draft_decode(reduce=4)", "draft_decode(reduce=8)"),
    "median": ("median(size=3)", "median(size=5)", "median(size=7)"),
    "collage": ("collage(grid='1x2')", "collage(grid='2x2')", "collage(grid='3x3')"),
    "crop_to_aspect": tuple(
        f"crop_to_aspect(aspect={a})" for a in (1.0, 0.8, 1.91, 0.5625, 1.7778)
    ),
    "pad_to_aspect": tuple(f"pad_to_aspect(aspect={a}, fill='blur')" for a in (1.0, 0.5625, 0.8)),
    "controls": (
        "identity",
        "png",
        "strip_metadata",
        "jpeg(progressive=True)",
        "jpeg_keep",
        "webp(lossless=True)",
    ),
}


_LEVELS = re.compile(r"^S([1-5])(?:-S?([1-5]))?$")


def _levels(ladder: Ladder, spec: str) -> list[Any]:
    if spec in ("fine", "all"):
        return list(ladder.fine)
    values: list[Any] = []
    for part in spec.split(","):
        m = _LEVELS.match(part.strip())
        if not m:
            raise InvalidParameterError(
                f"Cannot read severity {part!r}: write S1..S5, a range such as S1-S5, a list "
                "such as S1,S3, or 'fine'."
            )
        lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
        if hi < lo:
            raise InvalidParameterError(
                f"Severity range {part!r} runs backwards; write S{hi}-S{lo}."
            )
        values += [ladder.levels[k - 1] for k in range(lo, hi + 1)]
    return values


def _expand_step(text: str) -> list[Chain]:
    """One step of a selection: a transform, ``family@levels`` or ``preset:name``."""
    text = text.strip()
    if text.startswith("preset:"):
        return [preset(text.removeprefix("preset:"))]
    if "@" in text and "(" not in text:
        family, _, spec = text.partition("@")
        family = family.strip()
        if family not in LADDERS and family not in CATEGORICAL:
            family = family.lower()  # family names are case-insensitive
        if family in CATEGORICAL:
            return [parse_chain(v) for v in CATEGORICAL[family]]
        if family not in LADDERS:
            close = difflib.get_close_matches(family, [*LADDERS, *CATEGORICAL], n=1)
            hint = f" Did you mean {close[0]!r}?" if close else f" Families: {', '.join(LADDERS)}."
            raise UnknownNameError(f"No severity ladder {family!r}.{hint}")
        ladder = LADDERS[family]
        return [Chain((ladder.step(v),)) for v in _levels(ladder, spec.strip())]
    return [parse_chain(text)]


def expand(text: str) -> list[Chain]:
    """Chains named by one selection: a chain whose steps may be transforms, ladders
    (``crop@S1-S5``) or presets; ``resize(scale=0.5)|jpeg@S1-S3`` gives three chains."""
    steps = [_expand_step(part) for part in split_steps(text)]
    chains = steps[0]
    for options in steps[1:]:
        chains = [Chain(a.steps + b.steps) for a in chains for b in options]
    return chains


# --- The catalogue table ----------------------------------------------------------------------


def parameter_domains(cls: type[Transform]) -> dict[str, str]:
    """Each parameter's allowed values, from its declaration (an undeclared parameter, as a
    plugin may have, is described by its annotated type)."""
    return {
        f.name: p.domain() if (p := declared(f)) is not None else str(f.type)
        for f in dataclasses.fields(cls)
    }


def catalogue() -> list[dict[str, Any]]:
    """One row per registered transform: parameters with defaults and domains, intensity, model."""
    rows = []
    ladders_of: dict[str, list[str]] = {}
    for family, ladder in LADDERS.items():
        ladders_of.setdefault(ladder.transform, []).append(family)
    for name in TRANSFORMS.names():
        cls = TRANSFORMS.get(name)
        domains = parameter_domains(cls)
        params = [
            {
                "name": f.name,
                "default": None if f.default is dataclasses.MISSING else f.default,
                "domain": domains[f.name],
                "doc": p.doc if (p := declared(f)) is not None else "",
            }
            for f in dataclasses.fields(cls)
        ]
        rows.append(
            {
                "name": name,
                "aliases": TRANSFORMS.aliases_of(name),
                "params": params,
                "intensity": cls.intensity_formula(),
                "models": cls.models,
                "ladders": ladders_of.get(name, []),
                "stable_pixels": cls.stable_pixels,
                "random": cls.uses_rng,
            }
        )
    return rows


def render_catalogue(markdown: bool = True) -> str:
    """The catalogue as a Markdown table (the README's copy is generated from this) or text."""
    rows = catalogue()
    if not markdown:
        out = []
        for r in rows:
            params = ", ".join(f"{p['name']}={p['default']!r}" for p in r["params"])
            out.append(f"{r['name']}({params})" if params else r["name"])
            out.append(f"    {r['models']}")
            for p in r["params"]:
                doc = f" ({p['doc']})" if p["doc"] else ""
                out.append(f"    - {p['name']}: {p['domain']}{doc}")
            out.append(f"    intensity: {r['intensity']}")
        return "\n".join(out) + "\n"
    lines = [
        "| transform | parameters (default; allowed) | intensity | models |",
        "|---|---|---|---|",
    ]
    for r in rows:
        params = "<br>".join(
            f"`{p['name']}={p['default']!r}`; {p['domain']}" + (f" ({p['doc']})" * bool(p["doc"]))
            for p in r["params"]
        )
        flags = " (seeded)" * r["random"] + " (not in exact goldens)" * (not r["stable_pixels"])
        ladders = "".join(f" ladder `{family}@S1-S5`" for family in r["ladders"])
        cells = [f"`{r['name']}`{flags}{ladders}", params or "-", r["intensity"], r["models"]]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"


def render_presets() -> str:
    lines = ["| preset | chain | source | confidence |", "|---|---|---|---|"]
    for name, p in PRESETS.items():
        chain = preset(name).id.replace("|", " → ")
        lines.append(f"| `preset:{name}` | `{chain}` | {p.source} | {p.confidence} |")
    return "\n".join(lines) + "\n"


def render_ladders() -> str:
    lines = ["| family | S1 .. S5 | fine grid |", "|---|---|---|"]
    for name, ladder in LADDERS.items():
        fixed = ", ".join(f"{k}={v!r}" for k, v in ladder.fixed.items())
        label = f"`{name}` ({ladder.transform}.{ladder.param}{'; ' + fixed if fixed else ''})"
        lines.append(
            f"| {label} | {', '.join(f'{v:g}' for v in ladder.levels)} | "
            f"{', '.join(f'{v:g}' for v in ladder.fine)} |"
        )
    return "\n".join(lines) + "\n"
