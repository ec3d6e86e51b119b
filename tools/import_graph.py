"""The package layering, read from the source with ``ast`` (nothing is imported or run).

    python tools/import_graph.py              # Mermaid graph of the layers (docs/architecture.md)
    python tools/import_graph.py --modules    # every project import, module by module
    python tools/import_graph.py --check      # exit 1, naming each import against the layering

A layer is a group of modules (:data:`LAYERS`, lowest first). :data:`RULES` says which layers each
layer may import; an import outside them is a violation, whether at the top of a module or inside a
function (a lazy import still couples the code). ``tests/test_layers.py`` runs the check.
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("harness", "transforms", "datasets_benign")

#: Layers, lowest first: a module belongs to the first layer whose prefix it starts with.
LAYERS = {
    "harness.core": ("harness.core",),
    "datasets_benign": ("datasets_benign",),
    "transforms": ("transforms",),
    "harness.algorithms": ("harness.algorithms", "harness.kernels", "harness._compiled"),
    "harness.report": ("harness.report",),
    "harness": ("harness",),
}

#: The layers each layer may import (besides itself). ``harness`` is the package's facade and
#: orchestration; ``harness.errors`` is only a re-export of ``harness.core.errors`` for plugins.
RULES = {
    "harness.core": set(),
    "datasets_benign": {"harness.core"},
    "transforms": {"harness.core"},
    "harness.algorithms": {"harness.core", "transforms", "datasets_benign", "harness"},
    "harness.report": {"harness.core", "harness.algorithms", "datasets_benign", "harness"},
    "harness": set(LAYERS),
}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(module: str) -> str | None:
    for layer, prefixes in LAYERS.items():
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return layer
    return None


def imports(path: Path) -> list[tuple[str, int]]:
    """Project modules imported by the file at ``path``: ``(module, line)``, lazy ones included."""
    module = module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against this module's package
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # "from harness import errors" imports the submodule harness.errors.
            names = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for name in names:
            if name.split(".")[0] in PACKAGES and layer_of(name) is not None:
                found.append((name, node.lineno))
    return found


def project_files() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))


def resolved_imports(path: Path) -> set[tuple[str, int]]:
    """:func:`imports` with each name cut back to the module it names (not a symbol in it)."""
    known = {module_name(p) for p in project_files()}
    out = set()
    for name, line in imports(path):
        while name not in known and "." in name:  # "harness.core.errors.X" -> the module
            name = name.rpartition(".")[0]
        out.add((name, line))
    return out


def module_graph() -> dict[str, set[str]]:
    """Module -> project modules it imports."""
    return {
        module_name(path): {name for name, _ in resolved_imports(path)} - {module_name(path)}
        for path in project_files()
    }


def layer_graph() -> dict[str, set[str]]:
    """Layer -> layers it imports."""
    out: dict[str, set[str]] = defaultdict(set)
    for module, targets in module_graph().items():
        source = layer_of(module)
        assert source is not None  # noqa: S101 - every project module has a layer
        out[source] |= {t for m in targets if (t := layer_of(m)) not in (None, source)}
    return {layer: out.get(layer, set()) for layer in LAYERS}


def violations() -> list[str]:
    """Every import against :data:`RULES`, as ``path:line: a imports b (layer x -> y)``."""
    found = []
    for path in project_files():
        source = layer_of(module_name(path))
        assert source is not None  # noqa: S101
        for name, line in sorted(resolved_imports(path), key=lambda item: item[1]):
            target = layer_of(name)
            # "from harness import x" names the package itself; the submodule entry says more.
            if target in (None, source) or target in RULES[source] or name == "harness":
                continue
            found.append(
                f"{path.relative_to(ROOT)}:{line}: {module_name(path)} imports {name} "
                f"({source} -> {target})"
            )
    return found


def mermaid(graph: dict[str, set[str]]) -> str:
    ids = {layer: layer.replace(".", "_") for layer in LAYERS}
    lines = ["graph BT"]
    lines += [f'    {ids[layer]}["{layer}"]' for layer in LAYERS]
    for source, targets in graph.items():
        lines += [
            f"    {ids[source]} --> {ids[t]}" for t in sorted(targets, key=list(LAYERS).index)
        ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--modules", action="store_true", help="list every project import")
    group.add_argument("--check", action="store_true", help="exit 1 on a layering violation")
    args = parser.parse_args(argv)
    if args.check:
        bad = violations()
        print("\n".join(bad) if bad else "layering holds")
        return 1 if bad else 0
    if args.modules:
        for module, targets in sorted(module_graph().items()):
            print(f"{module}: {', '.join(sorted(targets)) or '-'}")
        return 0
    sys.stdout.write(mermaid(layer_graph()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
