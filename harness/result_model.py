"""The results document (results.json, schema 3) as types.

Every section a reader looks into is a frozen :class:`msgspec.Struct` here, with fields in the
order ``evaluate`` writes them, so that ``results.to_json(results.from_json(text)) == text``.
Sections whose shape depends on the algorithm or the environment (``suite.config``,
``environment``, ``quality``, ``flagged_share``, ``impostors``, an algorithm's libraries) stay
JSON objects (:data:`JSONObject`): a type for them would only restate today's keys and break
with the next adapter.

Why msgspec Structs rather than stdlib dataclasses: one library validates a parsed document
against these types (a malformed file is refused at load with the path of the bad field,
``$.cells[0].positives.n``), converts it, and exports the JSON Schema
(``docs/results.schema.json``); ``UNSET`` marks keys a document may leave out (a curve with too
few pairs has no ``roc``), which keeps round trips byte-identical without writing a ``null``
that was never there. Stdlib dataclasses would need the same library (or hand-written
validation) for all three. Conversion is not a cost that matters: the 6 MB results.json of the
``algorithms`` suite converts in about 0.3 s, against minutes of hashing.

Keys with a default (empty lists, status ``ok``) are filled in when an older document lacks
them; documents this version writes always have them, so their round trip is exact. Field
order is the order ``evaluate`` writes keys in, which is the order they are written back.

Names stay the JSON keys this round, with one exception in Python only: ``n_bits`` (which
holds distance levels, beside ``hash_bits``) is the attribute ``levels``; the JSON key is
unchanged until a schema version renames it with a migration.
"""

from __future__ import annotations

from typing import Any

import msgspec
from msgspec import UNSET, UnsetType, field

#: A JSON object kept as parsed (sections whose keys vary by algorithm or machine).
JSONObject = dict[str, Any]

#: A number as written: an int stays an int and a float a float, so round trips keep bytes.
Number = int | float


class _Model(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Base of every section: immutable, keyword-only, and an unknown key is an error (a key
    this model does not know would otherwise be dropped on the next write)."""


# -- rates and statistics --------------------------------------------------------------------


class Rate(_Model, frozen=True, kw_only=True):
    """A proportion ``k / n`` with its 95% Clopper-Pearson interval and a status
    (``ok``, ``unresolved``, ``unachievable``, ``undefined``); ``value`` is null when ``n`` is 0.
    Held-out rates add a bootstrap interval and pooled TPRs the count of gated copies."""

    k: int
    n: int
    value: Number | None
    ci95: list[Number | None]
    status: str = "ok"
    bootstrap_ci95: list[Number | None] | UnsetType = UNSET
    gated: int | UnsetType = UNSET


class EditRate(_Model, frozen=True, kw_only=True):
    """A TPR of one edit at a threshold (``tpr`` lists of threshold answers)."""

    transform: str
    k: int
    n: int
    value: Number | None
    ci95: list[Number | None]
    status: str = "ok"
    bootstrap_ci95: list[Number | None] | UnsetType = UNSET
    gated: int | UnsetType = UNSET


class Metric(_Model, frozen=True, kw_only=True):
    """A named rate at parameters (``tpr`` / ``tpr_hashed`` / ``fpr`` at a threshold, per
    category or protocol)."""

    name: str
    params: JSONObject
    k: int
    n: int
    value: Number | None
    ci95: list[Number | None]
    status: str = "ok"

    @property
    def threshold(self) -> int:
        return int(self.params["threshold"])

    @property
    def rate(self) -> Rate:
        return Rate(k=self.k, n=self.n, value=self.value, ci95=self.ci95, status=self.status)


class Summary(_Model, frozen=True, kw_only=True):
    """Distances of a histogram: count, mean, min, median, max (null when empty)."""

    n: int
    mean: Number | None
    min: int | None
    median: int | None
    max: int | None


# -- suite, dataset, algorithms, transforms -----------------------------------------------------


class Narrowed(_Model, frozen=True, kw_only=True):
    """How a run replaced its suite's transforms (``run --transforms``): the suite's own
    entries, the suite's edits it left out and any it added (``check`` compares the cells the
    run has with the whole suite's baseline and reports the others as not run)."""

    option: str
    suite_transforms: list[str]
    not_run: list[str] = []
    added: list[str] = []


class SuiteInfo(_Model, frozen=True, kw_only=True):
    name: str
    version: int
    description: str | UnsetType = UNSET
    config: JSONObject | UnsetType = UNSET
    config_sha256: str | UnsetType = UNSET
    narrowed: Narrowed | UnsetType = UNSET


class Image(_Model, frozen=True, kw_only=True):
    """One image of the dataset: its manifest entry, digest, size, status and split."""

    id: str
    source: str | UnsetType = UNSET
    licence: str | UnsetType = UNSET
    category: str | UnsetType | None = UNSET
    group: str | UnsetType = UNSET
    sha256: str | UnsetType | None = UNSET
    width: int | UnsetType | None = UNSET
    height: int | UnsetType | None = UNSET
    status: str = "ok"
    split: str | UnsetType = UNSET
    frame: str | UnsetType = UNSET


class Excluded(_Model, frozen=True, kw_only=True):
    id: str
    reason: str


class DatasetInfo(_Model, frozen=True, kw_only=True):
    name: str
    decode: str | UnsetType = UNSET
    manifest_sha256: str | UnsetType = UNSET
    content_sha256: str | UnsetType = UNSET
    n_images: int
    n_evaluated: int
    max_side: int | UnsetType | None = UNSET
    oversize_policy: str | UnsetType = UNSET
    images: list[Image]
    excluded: list[Excluded] = []


class OperatingThreshold(_Model, frozen=True, kw_only=True):
    bits: int
    source: str


class AlgorithmInfo(_Model, frozen=True, kw_only=True):
    """An algorithm as run: fingerprint (id, adapter version, libraries, the full spec of a
    hasher named by its label, a vendor command, a matching policy's parts), distance levels, the
    suite's thresholds and published operating points."""

    id: str
    version: int | str | UnsetType = UNSET
    libraries: JSONObject | UnsetType = UNSET
    spec: str | UnsetType = UNSET
    command: list[str] | UnsetType = UNSET
    parts: list[JSONObject] | UnsetType = UNSET
    levels: int = field(name="n_bits")
    hash_bits: int | UnsetType = UNSET
    distance: str | UnsetType = UNSET
    level_unit: str | UnsetType = UNSET
    thresholds: list[int]
    operating_thresholds: list[OperatingThreshold] | UnsetType = UNSET


class Step(_Model, frozen=True, kw_only=True):
    name: str
    version: int | UnsetType = UNSET
    params: JSONObject = {}


class TransformInfo(_Model, frozen=True, kw_only=True):
    """An edit chain: id, label, chain version, intensity in [0, 1] and its steps."""

    id: str
    label: str | UnsetType | None = UNSET
    version: str | UnsetType = UNSET
    intensity: Number | UnsetType | None = UNSET
    steps: list[Step]


# -- cells and collisions ----------------------------------------------------------------------


class Histogram(_Model, frozen=True, kw_only=True):
    """Pairs per distance level, with their count and summary."""

    n: int
    hist: list[int]
    summary: Summary | UnsetType = UNSET


class Positives(_Model, frozen=True, kw_only=True):
    """The original-vs-edited distances of a cell; ``distances`` per image (null = no pair),
    ``gated`` the images whose edited hash was discarded (counted as misses)."""

    n: int
    hist: list[int]
    summary: Summary | UnsetType = UNSET
    distances: list[int | None] | UnsetType = UNSET
    gated: list[str] = []


class Miss(_Model, frozen=True, kw_only=True):
    image: str
    distance: int


class FalseMatch(_Model, frozen=True, kw_only=True):
    query: str
    nearest_other: str
    distance: int


class Cell(_Model, frozen=True, kw_only=True):
    """One algorithm under one edit: positives, negatives per protocol, metrics, the worst
    misses and false matches to review."""

    algorithm: str
    transform: str
    levels: int | UnsetType = field(default=UNSET, name="n_bits")
    positives: Positives
    negatives: dict[str, Histogram] = {}
    metrics: list[Metric]
    misses: list[Miss] = []
    false_matches: list[FalseMatch] = []


class Pair(_Model, frozen=True, kw_only=True):
    a: str
    b: str
    distance: int


class CategoryCollisions(_Model, frozen=True, kw_only=True):
    n_images: int
    n_pairs: int
    metrics: list[Metric] | UnsetType = UNSET


class Collision(_Model, frozen=True, kw_only=True):
    """Pairs of different images under a protocol: all pairs of originals, or edited copies
    pooled over every edit."""

    algorithm: str
    protocol: str
    pooled_over: str | UnsetType = UNSET
    levels: int | UnsetType = field(default=UNSET, name="n_bits")
    n_images: int | UnsetType = UNSET
    n_pairs: int | UnsetType = UNSET
    hist: list[int]
    summary: Summary | UnsetType = UNSET
    metrics: list[Metric]
    closest_pairs: list[Pair] | UnsetType = UNSET
    by_category: dict[str, CategoryCollisions] | UnsetType = UNSET


# -- curves, sweeps, thresholds ------------------------------------------------------------


class Eer(_Model, frozen=True, kw_only=True):
    threshold: int | None
    fpr: Number
    fnr: Number
    value: Number


class RocPoints(_Model, frozen=True, kw_only=True):
    threshold: list[int | None]
    fpr: list[Number]
    tpr: list[Number]


class DetPoints(_Model, frozen=True, kw_only=True):
    threshold: list[int | None]
    fpr: list[Number]
    fnr: list[Number]


class TprAtFpr(_Model, frozen=True, kw_only=True):
    target_fpr: Number
    threshold: int | None
    tpr: Rate
    fpr: Rate
    status: str
    reason: str
    negatives_needed: int | UnsetType | None = UNSET


class FprAtTpr(_Model, frozen=True, kw_only=True):
    target_tpr: Number
    threshold: int | None
    status: str
    reason: str
    tpr: Rate
    fpr: Rate


class Precision(_Model, frozen=True, kw_only=True):
    threshold: int
    base_rate: Number
    value: Number | None
    ci95: list[Number | None]


class Curve(_Model, frozen=True, kw_only=True):
    """ROC / DET of one algorithm over every edit pooled, with TPR at target FPRs, FPR at
    target TPRs and precision at base rates (in-sample: not a threshold choice)."""

    algorithm: str
    positives: str
    negatives: str
    in_sample: bool | UnsetType = UNSET
    status: str | UnsetType = UNSET
    reason: str | UnsetType = UNSET
    auc: Number | UnsetType | None = UNSET
    eer: Eer | UnsetType = UNSET
    roc: RocPoints | UnsetType = UNSET
    threshold_null: str | UnsetType = UNSET
    det: DetPoints | UnsetType = UNSET
    tpr_at_fpr: list[TprAtFpr] = []
    fpr_at_tpr: list[FprAtTpr] = []
    precision: list[Precision] = []


class SweepRow(_Model, frozen=True, kw_only=True):
    threshold: int
    tpr: Rate
    fpr: Rate


class Sweep(_Model, frozen=True, kw_only=True):
    algorithm: str
    levels: int = field(name="n_bits")
    positives: str
    negatives: str
    gated: int | UnsetType = UNSET
    rows: list[SweepRow]


class PartScore(_Model, frozen=True, kw_only=True):
    """The calibration or held-out part of a threshold choice."""

    images: int
    negatives: int
    fpr: Rate
    tpr_pooled: Rate | UnsetType = UNSET
    tpr: list[EditRate] | UnsetType = UNSET


class Bootstrap(_Model, frozen=True, kw_only=True):
    resamples: int
    seed: int
    unit: str
    note: str | None


class ThresholdChoice(_Model, frozen=True, kw_only=True):
    """A threshold chosen on the calibration images for a target FPR and scored on the
    held-out ones. ``status`` is ok / unresolved / unachievable / undefined with its
    ``reason``; ``required`` says how many images a resolved answer needs."""

    target_fpr: Number
    protocol: str
    threshold: int | None
    threshold_ci95: list[Number | None]
    status: str
    reason: str
    calibration: PartScore
    held_out: PartScore
    required: JSONObject
    bootstrap: Bootstrap | UnsetType = UNSET


class FixedScore(_Model, frozen=True, kw_only=True):
    """A given threshold (the suite's, a vendor's) scored on every image."""

    threshold: int
    protocol: str
    status: str
    reason: str
    images: int
    negatives: int
    fpr: Rate
    tpr_pooled: Rate
    tpr: list[EditRate]
    bootstrap: Bootstrap


class Recommendation(_Model, frozen=True, kw_only=True):
    algorithm: str
    targets: list[ThresholdChoice]
    fixed: list[FixedScore] = []


# -- real variants -----------------------------------------------------------------------------


class VariantPair(_Model, frozen=True, kw_only=True):
    variant: str
    original: str
    distance: int


class Unpaired(_Model, frozen=True, kw_only=True):
    variant: str
    original: str
    reason: str


class VariantPositives(_Model, frozen=True, kw_only=True):
    """A variant row's positive pairs: per variant file, not per dataset image."""

    n: int
    hist: list[int]
    summary: Summary | UnsetType = UNSET
    pairs: list[VariantPair] = []
    gated: list[str] = []
    unpaired: list[Unpaired] = []


class VariantAtChoice(_Model, frozen=True, kw_only=True):
    """A variant row's TPR at the threshold the run chose for ``target_fpr`` on the calibration
    images' synthetic negative pairs (no variant informs it); ``status`` is the choice's
    (ok / unresolved / unachievable / undefined), the rate's own is in ``tpr``."""

    target_fpr: Number
    threshold: int | None
    status: str
    tpr: Rate


class VariantRow(_Model, frozen=True, kw_only=True):
    """One algorithm against one kind of real re-upload, shaped like a :class:`Cell`
    (``transform`` holds the row name, ``variant_of:<kind>``), with its TPR at the chosen
    thresholds (``chosen``; absent from documents written before it was recorded)."""

    algorithm: str
    transform: str
    kind: str | None = None
    levels: int | UnsetType = field(default=UNSET, name="n_bits")
    positives: VariantPositives
    negatives: dict[str, Histogram] = {}
    metrics: list[Metric]
    chosen: list[VariantAtChoice] | UnsetType = UNSET
    misses: list[VariantPair] = []


class VariantImage(_Model, frozen=True, kw_only=True):
    id: str
    variant_of: str
    kind: str | None = None
    sha256: str | UnsetType | None = UNSET
    width: int | UnsetType | None = UNSET
    height: int | UnsetType | None = UNSET


class Variants(_Model, frozen=True, kw_only=True):
    """Real variant pairs declared by the manifest (``variant_of``), present only when the
    dataset declares some (see :mod:`harness.variants`)."""

    note: str
    images: list[VariantImage] = []
    rows: list[VariantRow] = []


# -- leaderboard, edit families, gallery, run -----------------------------------------------------


class LeaderboardRow(_Model, frozen=True, kw_only=True):
    algorithm: str
    threshold: int | None
    status: str
    reason: str
    fpr: Rate
    tpr: dict[str, Rate | None]
    flagged: JSONObject | UnsetType | None = UNSET
    #: Real variants' TPR per row name at this threshold (only when the dataset has variants).
    variants: dict[str, Rate | None] | UnsetType = UNSET


class Leaderboard(_Model, frozen=True, kw_only=True):
    """Every algorithm at its threshold chosen for one target FPR, TPR per edit family."""

    target_fpr: Number
    rule: str
    families: list[str]
    rows: list[LeaderboardRow]


class EditFamily(_Model, frozen=True, kw_only=True):
    """A family of edits (what reports group by): its transforms, each one's strength
    (``[parameter, value]``, or null for chains and presets) and, per algorithm, the positive
    distance histogram pooled over the family."""

    family: str
    transforms: list[str]
    strength: list[list[str | Number] | None]
    positives: dict[str, list[int]]


class Escape(_Model, frozen=True, kw_only=True):
    algorithm: str
    transform: str
    image: str
    distance: int | None
    licence: str
    thumbnails: dict[str, str]


class GalleryCollision(_Model, frozen=True, kw_only=True):
    algorithm: str
    a: str
    transform: str | None
    b: str
    distance: int
    licences: list[str]
    thumbnails: dict[str, str]


class SetApart(_Model, frozen=True, kw_only=True):
    image: str
    reason: str


class Gallery(_Model, frozen=True, kw_only=True):
    """The worst escapes and closest real collisions per algorithm, with thumbnails."""

    escapes: list[Escape] = []
    collisions: list[GalleryCollision] = []
    set_apart: list[SetApart] = []
    note: str = ""


class Status(_Model, frozen=True, kw_only=True):
    """Failed images (originals and real variants, ``variants_failed`` of them variants) and
    their rate against the suite's ``max_failure_rate``."""

    images_failed: int
    failure_rate: Number
    max_failure_rate: Number
    ok: bool
    variants_failed: int | UnsetType = UNSET


class AlgorithmCost(_Model, frozen=True, kw_only=True):
    """One algorithm's CPU time per hash call over the calls a run made (``status`` is
    ``measured``, or says why not: every hash cached, or none made)."""

    algorithm: str
    n: int
    status: str
    median_ms: Number | UnsetType = UNSET
    p95_ms: Number | UnsetType = UNSET
    hashes_per_cpu_s: Number | UnsetType | None = UNSET


class RunCost(_Model, frozen=True, kw_only=True):
    """CPU cost per hash, measured where the run ran (``unit`` says what is timed)."""

    unit: str
    algorithms: list[AlgorithmCost] = []


class RunInfo(_Model, frozen=True, kw_only=True):
    """What differs between two runs of the same suite (never compared): run id, time,
    elapsed seconds, workers, the vendor file a run was scored from, CPU cost per hash, the
    cache used."""

    id: str | UnsetType = UNSET
    created_utc: str | UnsetType = UNSET
    elapsed_s: Number | UnsetType = UNSET
    workers: int | UnsetType = UNSET
    scored_from: str | UnsetType = UNSET
    cost: RunCost | UnsetType = UNSET
    cache: JSONObject | UnsetType = UNSET


class Failure(_Model, frozen=True, kw_only=True):
    """An image that could not be decoded, edited or hashed (``stage``), with the reason."""

    image: str
    stage: str
    transform: str | UnsetType = UNSET
    algorithm: str | UnsetType = UNSET
    error: str
    kind: str | UnsetType = UNSET
    variant_of: str | UnsetType = UNSET


class Exclusion(_Model, frozen=True, kw_only=True):
    """An image or edited copy an algorithm left out by its own rule (a quality gate)."""

    image: str
    transform: str
    algorithm: str
    reason: str
    variant_of: str | UnsetType = UNSET


class Hygiene(_Model, frozen=True, kw_only=True):
    exact_duplicates: list[JSONObject] = []
    near_duplicates: JSONObject | None = None
    degenerate: list[JSONObject] | UnsetType = UNSET
    warnings: list[str] | UnsetType = UNSET


# -- the document ------------------------------------------------------------------------------


class Results(_Model, frozen=True, kw_only=True):
    """A results document (schema 3). ``run`` is the only part that differs between two runs
    of the same suite on the same data and environment."""

    schema_version: int
    harness_version: str | UnsetType = UNSET
    suite: SuiteInfo
    dataset: DatasetInfo
    environment: JSONObject
    seed: int | UnsetType = UNSET
    algorithms: list[AlgorithmInfo]
    transforms: list[TransformInfo]
    protocols: dict[str, str] | UnsetType = UNSET
    hygiene: Hygiene | UnsetType = UNSET
    cells: list[Cell]
    collisions: list[Collision]
    quality: list[JSONObject] = []
    curves: list[Curve] = []
    recommendations: list[Recommendation] = []
    sweeps: list[Sweep] | UnsetType = UNSET
    flagged_share: list[JSONObject] | UnsetType = UNSET
    impostors: JSONObject | UnsetType | None = UNSET
    failures: list[Failure] | UnsetType = UNSET
    exclusions: list[Exclusion] | UnsetType = UNSET
    status: Status | UnsetType = UNSET
    leaderboard: Leaderboard | UnsetType | None = UNSET
    edit_families: list[EditFamily] | UnsetType = UNSET
    variants: Variants | UnsetType = UNSET
    gallery: Gallery | UnsetType = UNSET
    run: RunInfo | UnsetType = UNSET

    # -- lookups readers share -------------------------------------------------------------

    def algorithm(self, algorithm_id: str) -> AlgorithmInfo:
        """The algorithm entry with this id (KeyError naming the ids there are)."""
        for a in self.algorithms:
            if a.id == algorithm_id:
                return a
        raise KeyError(
            f"no algorithm {algorithm_id!r} in these results "
            f"(there are: {', '.join(a.id for a in self.algorithms)})"
        )

    def cell(self, algorithm: str, transform: str) -> Cell | None:
        """The cell of one algorithm under one edit, or None."""
        return next(
            (c for c in self.cells if c.algorithm == algorithm and c.transform == transform),
            None,
        )

    def recommendation(self, algorithm: str) -> Recommendation | None:
        return next((r for r in self.recommendations if r.algorithm == algorithm), None)

    def curve(self, algorithm: str) -> Curve | None:
        return next((c for c in self.curves if c.algorithm == algorithm), None)

    def originals_collision(self, algorithm: str) -> Collision | None:
        """All pairs of distinct originals of one algorithm."""
        return next(
            (
                c
                for c in self.collisions
                if c.algorithm == algorithm and c.protocol == "originals_all_pairs"
            ),
            None,
        )

    def without_run(self) -> Results:
        """This document without its ``run`` block: what two runs are compared on."""
        return msgspec.structs.replace(self, run=UNSET)


def json_schema() -> str:
    """The JSON Schema of results.json (``docs/results.schema.json`` is this text; regenerate
    it with ``python -m harness.result_model > docs/results.schema.json``)."""
    import json

    schema = msgspec.json.schema(Results)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "hash-harness results.json (schema_version 3)"
    return json.dumps(schema, indent=1, sort_keys=True) + "\n"


if __name__ == "__main__":
    print(json_schema(), end="")
