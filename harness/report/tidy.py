"""Tidy exports: every rate of a results document as one row (results.csv, results.parquet).

One row per algorithm x edit x metric, with the count, the rate and its 95% interval, so a
spreadsheet, pandas or a notebook reads the results without walking nested JSON::

    algorithm,transform,metric,protocol,category,threshold,target_fpr,k,n,value,lo,hi,status
    phash,jpeg(quality=50),tpr,,,10,,17,17,1.0,0.8049...,1.0,ok

``transform`` is empty for rates over pairs of originals; ``target_fpr`` is set for the held-out
rates of a recommended threshold and for ``chosen_tpr``, the real variants' TPR at it (rows named
``variant_of:<kind>``, :mod:`harness.variants`). Read from the results document; nothing is
recomputed.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

from harness import variants
from harness.core.errors import HarnessError
from harness.result_model import Cell, EditRate, Metric, Rate, Results, VariantRow

COLUMNS = (
    "algorithm",
    "transform",
    "metric",
    "protocol",
    "category",
    "threshold",
    "target_fpr",
    "k",
    "n",
    "value",
    "lo",
    "hi",
    "status",
)


def _row(
    algorithm: str,
    transform: str,
    name: str,
    m: Metric | Rate | EditRate,
    status: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    params = m.params if isinstance(m, Metric) else {}
    lo, hi = m.ci95 or (None, None)
    return {
        "algorithm": algorithm,
        "transform": transform,
        "metric": name,
        "protocol": params.get("protocol", extra.get("protocol", "")),
        "category": params.get("category", ""),
        "threshold": params.get("threshold", extra.get("threshold")),
        "target_fpr": extra.get("target_fpr"),
        "k": m.k,
        "n": m.n,
        "value": m.value,
        "lo": lo,
        "hi": hi,
        "status": status or m.status,
    }


def rows(result: Results) -> Iterator[dict[str, Any]]:
    """Every rate in the document, in document order (deterministic)."""
    cells: list[Cell | VariantRow] = [*result.cells, *variants.rows(result)]
    for cell in cells:  # real variant pairs: own rows
        for m in cell.metrics:
            protocol = m.params.get("protocol", "own_original" if m.name == "tpr" else "")
            yield _row(cell.algorithm, cell.transform, m.name, m, protocol=protocol)
    for row in variants.rows(result):  # at the thresholds chosen without any variant
        for c in row.chosen or []:
            yield _row(
                row.algorithm,
                row.transform,
                "chosen_tpr",
                c.tpr,
                c.status if c.tpr.status == "ok" else c.tpr.status,
                protocol="own_original",
                threshold=c.threshold,
                target_fpr=c.target_fpr,
            )
    for coll in result.collisions:
        for m in coll.metrics:
            yield _row(coll.algorithm, "", m.name, m, protocol=coll.protocol)
    for rec in result.recommendations:
        for t in rec.targets:
            where = {"threshold": t.threshold, "target_fpr": t.target_fpr}
            ho = t.held_out
            # A held-out rate at a threshold the target could not support is not "ok": the row
            # carries the target's verdict (unresolved, unachievable, undefined) unless it has
            # a verdict of its own.

            def scored(m: Rate | EditRate, verdict: str = t.status) -> str:
                return verdict if m.status == "ok" else m.status

            algo = rec.algorithm
            yield _row(
                algo, "", "held_out_fpr", ho.fpr, scored(ho.fpr), protocol=t.protocol, **where
            )
            if ho.tpr_pooled:
                pooled = ho.tpr_pooled
                yield _row(
                    algo,
                    "",
                    "held_out_tpr_pooled",
                    pooled,
                    scored(pooled),
                    protocol="own_original",
                    **where,
                )
            for r in ho.tpr or []:
                yield _row(
                    algo,
                    r.transform,
                    "held_out_tpr",
                    r,
                    scored(r),
                    protocol="own_original",
                    **where,
                )


def to_csv(result: Results) -> str:
    """results.csv: a header line, then one line per rate; missing values are empty."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows(result):
        writer.writerow({k: "" if v is None else v for k, v in row.items()})
    return buf.getvalue()


def to_parquet(result: Results) -> bytes:
    """results.parquet (needs pyarrow: ``pip install 'hash-harness[parquet]'``)."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise HarnessError(
            "Parquet output needs pyarrow: pip install 'hash-harness[parquet]' "
            "(or use --format csv)."
        ) from None
    data = list(rows(result))
    schema = pa.schema(
        [
            ("algorithm", pa.string()),
            ("transform", pa.string()),
            ("metric", pa.string()),
            ("protocol", pa.string()),
            ("category", pa.string()),
            ("threshold", pa.int64()),
            ("target_fpr", pa.float64()),
            ("k", pa.int64()),
            ("n", pa.int64()),
            ("value", pa.float64()),
            ("lo", pa.float64()),
            ("hi", pa.float64()),
            ("status", pa.string()),
        ]
    )
    table = pa.Table.from_pylist(data, schema=schema)
    buf = pa.BufferOutputStream()
    pq.write_table(table, buf)
    return bytes(buf.getvalue().to_pybytes())
