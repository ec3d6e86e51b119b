"""Markdown of a golden-hash check (``hash-harness golden check``; the drift comes from
:func:`harness.golden.check`)."""

from __future__ import annotations

from typing import Any


def render(report: dict[str, Any]) -> str:
    out = [
        f"# hash-harness golden check: **{'DRIFT' if report['drift'] else 'OK'}**",
        "",
        report["cause"] + ".",
    ]
    if report["inputs_changed"]:
        out += [
            "",
            "Reference images that decode to different pixels: "
            + ", ".join(report["inputs_changed"])
            + ".",
        ]
    if report["changes"]:
        out += [
            "",
            "| algorithm | images changed | max bits moved | images (bits) |",
            "|---|---|---|---|",
        ]
        for c in report["changes"]:
            detail = ", ".join(
                f"{img} ({b if b >= 0 else 'excluded or included'})"
                for img, b in list(c["moved"].items())[:8]
            )
            more = f", … {len(c['moved']) - 8} more" if len(c["moved"]) > 8 else ""
            out.append(
                f"| `{c['algorithm']}` | {c['images_changed']} / {c['images']} | "
                f"{c['max_bits']} of {c['n_bits']} | {detail}{more} |"
            )
    if report["unchanged"]:
        out += ["", "Unchanged: " + ", ".join(f"`{a}`" for a in report["unchanged"]) + "."]
    return "\n".join(out) + "\n"
