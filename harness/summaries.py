"""Summaries computed once, at run time, and stored in the results document.

Reports only read the results document (data flows one way); what they show beyond the raw cells -
the leaderboard, the families of edits with their pooled distances, and the galleries' picks with
their thumbnails (made in the hashing pass, :mod:`harness.hashing`) - is derived here, by the run.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

from harness.metrics import rate

#: Gallery size per algorithm: this many edited copies that escaped, and as many collisions.
PER_ALGORITHM = 3


def family_of(transform: dict[str, Any]) -> str:
    """A transform's family: its label (presets); for one step, the step without its strength
    parameter (``crop(anchor='top_left')``), so each family varies in severity only; a longer
    chain is its own family."""
    if transform.get("label"):
        return str(transform["label"])
    steps = transform["steps"]
    if len(steps) != 1:
        return str(transform["id"])
    from transforms import TRANSFORMS

    step = steps[0]
    try:
        fields = dataclasses.fields(TRANSFORMS.get(step["name"]))
    except Exception:  # a transform this installation does not know
        return str(step["name"])
    defaults = {f.name: f.default for f in fields}
    rest = {
        k: v
        for k, v in step["params"].items()
        if k != fields[0].name and not (k in defaults and v == defaults[k])
    }
    if not rest:
        return str(step["name"])
    return f"{step['name']}({','.join(f'{k}={v!r}' for k, v in sorted(rest.items()))})"


def strength_of(transform: dict[str, Any]) -> tuple[str, float] | None:
    """``("quality", 50.0)`` for ``jpeg(quality=50)``: the one-step edit's strength parameter (its
    first field, the one :func:`family_of` leaves out) and value; None for chains and presets or
    a non-numeric strength."""
    steps = transform["steps"]
    if transform.get("label") or len(steps) != 1:
        return None
    from transforms import TRANSFORMS

    step = steps[0]
    try:
        name = dataclasses.fields(TRANSFORMS.get(step["name"]))[0].name
    except Exception:  # a transform this installation does not know, or one without fields
        return None
    value = step["params"].get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return f"{step['name']} {name}", float(value)


def families_of(transforms: list[dict[str, Any]]) -> dict[str, list[str]]:
    """The run's edits (identity, a control, left out) by :func:`family_of`, in suite order."""
    families: dict[str, list[str]] = {}
    for t in transforms:
        if t["id"] != "identity":
            families.setdefault(family_of(t), []).append(t["id"])
    return families


def edit_families(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Per family of edits: its transforms, each one's strength (:func:`strength_of`: the
    parameter's name and value, or None) and, per algorithm, the positive distance histogram
    pooled over the family - what the reports group by, so they need no transform catalogue."""
    transforms = {t["id"]: t for t in result["transforms"]}
    hists = {(c["algorithm"], c["transform"]): c["positives"]["hist"] for c in result["cells"]}
    out = []
    for name, ids in families_of(result["transforms"]).items():
        pooled = {}
        for algo in result["algorithms"]:
            members = [hists[(algo["id"], t)] for t in ids if (algo["id"], t) in hists]
            if members:
                pooled[algo["id"]] = np.sum(members, axis=0, dtype=np.int64).tolist()
        strengths = [strength_of(transforms[t]) for t in ids]
        out.append(
            {
                "family": name,
                "transforms": ids,
                "strength": [list(s) if s is not None else None for s in strengths],
                "positives": pooled,
            }
        )
    return out


def leaderboard(result: dict[str, Any], target_fpr: float) -> dict[str, Any]:
    """Per algorithm: the threshold of the one threshold rule at ``target_fpr`` (chosen on the
    calibration images, the Thresholds section's), its status, and the held-out TPR at it per
    transform family (identity left out; gated copies count as misses)."""
    families = families_of(result["transforms"])
    held_out = np.array([i.get("split") == "held_out" for i in result["dataset"]["images"]])
    index = {i["id"]: k for k, i in enumerate(result["dataset"]["images"])}
    rows = []
    for rec in result.get("recommendations", []):
        choice = next((t for t in rec["targets"] if t["target_fpr"] == target_fpr), None)
        if choice is None:
            continue
        algo, th = rec["algorithm"], choice["threshold"]
        cells = {c["transform"]: c for c in result["cells"] if c["algorithm"] == algo}
        per_family = {}
        for fam, ids in families.items():
            k = n = 0
            for i in ids:
                if i not in cells:
                    continue
                pos = cells[i]["positives"]
                d = [
                    x
                    for x, h in zip(pos["distances"], held_out, strict=True)
                    if h and x is not None
                ]
                k += 0 if th is None else sum(x <= th for x in d)
                n += len(d) + sum(1 for g in pos.get("gated", []) if held_out[index[g]])
            per_family[fam] = rate(k, n).to_dict() if n else None
        rows.append(
            {
                "algorithm": algo,
                "threshold": th,
                "status": choice["status"],
                "reason": choice["reason"],
                "fpr": choice["held_out"]["fpr"],
                "tpr": per_family,
                "flagged": _flagged_at(result, algo, target_fpr),
            }
        )
    return {
        "target_fpr": target_fpr,
        "rule": "chosen on the calibration images, TPR and FPR on the held-out images",
        "families": list(families),
        "rows": rows,
    }


def _flagged_at(result: dict[str, Any], algorithm: str, target_fpr: float) -> dict[str, Any] | None:
    """The share of uploads flagged at the chosen threshold against the largest database size
    the suite names (measured, model-based or unresolved), or None when there is no answer."""
    entry = next((f for f in result.get("flagged_share", []) if f["algorithm"] == algorithm), None)
    chosen = next(
        (c for c in (entry or {}).get("chosen", []) if c["target_fpr"] == target_fpr), None
    )
    if chosen is None or not chosen["at"]:
        return None
    at = max(chosen["at"], key=lambda a: a["database_size"])
    keep = ("database_size", "kind", "share", "ci95", "label", "reason", "images_needed")
    return {k: at[k] for k in keep if k in at}


def gallery(result: dict[str, Any], thumbnail: Callable[[str, str], str | None]) -> dict[str, Any]:
    """Per algorithm, the edited copies that escaped worst and the closest real collisions
    (images flagged by corpus hygiene set apart and listed), with the JPEG thumbnails the
    hashing pass made: ``thumbnail(image id, "original" or chain id)`` returns one, or None
    when there is none (an image that failed, hashes scored from elsewhere).

    The hashing pass keeps edited copies' thumbnails only for escapes (a false match is known
    only once every image is hashed): a false-matching copy without one is shown by its
    original's, and the note says how many."""
    licence = {i["id"]: i.get("licence", "") for i in result["dataset"]["images"]}
    missing: set[str] = set()
    by_original: set[tuple[str, str]] = set()

    def thumb(image_id: str, transform: str = "original") -> str:
        found = thumbnail(image_id, transform)
        if found is None:
            missing.add(image_id)
        return found or ""

    def copy_thumb(image_id: str, transform: str) -> str:
        """A false-matching copy's thumbnail, or its original's when it was not kept."""
        found = thumbnail(image_id, transform) if transform else None
        if found is not None:
            return found
        if transform:
            by_original.add((image_id, transform))
        return thumb(image_id)

    set_apart = _set_apart(result.get("hygiene") or {})
    escapes = [
        {
            "algorithm": algo,
            "transform": transform,
            "image": image,
            "distance": dist,
            "licence": licence.get(image, ""),
            "thumbnails": {"original": thumb(image), "edited": thumb(image, transform)},
        }
        for dist, algo, transform, image in _escapes(result, set_apart)
    ]
    collisions = [
        {
            "algorithm": algo,
            "a": a,
            "transform": transform,
            "b": b,
            "distance": dist,
            "licences": [licence.get(a, ""), licence.get(b, "")],
            "thumbnails": {"a": copy_thumb(a, transform), "b": thumb(b)},
        }
        for dist, algo, a, transform, b in _collisions(result, set_apart)
    ]
    notes = [f"thumbnails unavailable for {len(missing)} images"] if missing else []
    if by_original:
        notes.append(
            f"{len(by_original)} false-matching edited "
            + ("copy" if len(by_original) == 1 else "copies")
            + " shown by the original's thumbnail (edited copies' thumbnails are kept only for"
            " escapes)"
        )
    note = "; ".join(notes)
    return {
        "escapes": escapes,
        "collisions": collisions,
        "set_apart": [{"image": k, "reason": v} for k, v in sorted(set_apart.items())],
        "note": note,
    }


def _escapes(result: dict[str, Any], set_apart: dict[str, str]) -> list[tuple[int, str, str, str]]:
    """``(distance, algorithm, transform, image)`` of the edited copies that escaped worst (by
    distance relative to the distance range), a few per algorithm."""
    n_levels = {a["id"]: max(1, a["n_bits"]) for a in result["algorithms"]}
    ranked = sorted(
        (
            (
                m["distance"] / n_levels[c["algorithm"]],
                m["distance"],
                c["algorithm"],
                c["transform"],
                m["image"],
            )
            for c in result["cells"]
            for m in c.get("misses", [])
            if m["image"] not in set_apart
        ),
        key=lambda x: (-x[0], x[2], x[3], x[4]),
    )
    shown: dict[str, int] = {}
    out = []
    for _, dist, algo, transform, image in ranked:
        if shown.get(algo, 0) < PER_ALGORITHM:
            shown[algo] = shown.get(algo, 0) + 1
            out.append((dist, algo, transform, image))
    return out


def _collisions(
    result: dict[str, Any], set_apart: dict[str, str]
) -> list[tuple[int, str, str, str, str]]:
    """``(distance, algorithm, a, transform of a or "", b)``: real collisions - pairs of different
    originals and edited copies whose closest other original matched - closest first, a few per
    algorithm. Flagged images are set apart."""
    found = sorted(
        [
            (p["distance"], c["algorithm"], p["a"], "", p["b"])
            for c in result["collisions"]
            for p in c.get("closest_pairs", [])
        ]
        + [
            (m["distance"], c["algorithm"], m["query"], c["transform"], m["nearest_other"])
            for c in result["cells"]
            for m in c.get("false_matches", [])
        ]
    )
    kept: dict[str, int] = {}
    out = []
    for dist, algo, a, transform, b in found:
        if a in set_apart or b in set_apart or kept.get(algo, 0) >= PER_ALGORITHM:
            continue
        kept[algo] = kept.get(algo, 0) + 1
        out.append((dist, algo, a, transform, b))
    return out


def _set_apart(hygiene: dict[str, Any]) -> dict[str, str]:
    """Images the galleries leave out, with why: flagged degenerate (flat or tiny: they collide
    with anything and teach nothing), exact duplicates and members of near-duplicate groups."""
    out: dict[str, str] = {}
    for d in hygiene.get("degenerate", []):
        out[d["image"]] = d["reason"]
    for d in hygiene.get("exact_duplicates", []):
        out[d["image"]] = f"same pixels as {d['same_pixels_as']}"
    for group in (hygiene.get("near_duplicates") or {}).get("groups", []):
        for image in group:
            out.setdefault(image, "near-duplicate group")
    return out
