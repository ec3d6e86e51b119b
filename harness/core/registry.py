"""Name -> class registries with aliases, "did you mean" errors and entry-point plugins.

Transforms, algorithms and datasets are each held in one :class:`Registry`. Third-party packages add
their own by declaring an entry point in the group named by ``Registry.entry_point_group``; such
plugins are loaded on the first lookup, so a plain ``import`` of the harness never imports them.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from importlib.metadata import entry_points
from typing import Generic, TypeVar

from harness.core.errors import HarnessError, UnknownNameError
from harness.core.words import quoted

T = TypeVar("T")


class Registry(Generic[T]):
    """A mapping from canonical names (and aliases) to registered objects.

    Parameters
    ----------
    kind : str
        What the registry holds, used in messages ("transform", "algorithm").
    entry_point_group : str or None
        Entry-point group scanned for plugins on first lookup.
    """

    def __init__(self, kind: str, entry_point_group: str | None = None) -> None:
        self.kind = kind
        self.entry_point_group = entry_point_group
        self._items: dict[str, T] = {}
        self._aliases: dict[str, str] = {}
        self._plugins_loaded = entry_point_group is None

    def register(self, name: str, *aliases: str) -> Callable[[T], T]:
        """Decorator registering an object under ``name`` and optional ``aliases``.

        A registered class with a ``name`` attribute (a :class:`~harness.core.spec.Spec`) gets
        ``name`` set from here, so the name is written once.
        """

        def decorator(obj: T) -> T:
            for key in (name, *aliases):
                if key in self._items or key in self._aliases:
                    raise HarnessError(f"{self.kind} {key!r} is registered twice")
            if isinstance(obj, type) and hasattr(obj, "name"):
                # The registered name is given here once; a class that also spells it out
                # (as plugins written before may) must agree.
                spelled = vars(obj).get("name")
                if spelled not in (None, "", name):
                    raise HarnessError(f"{self.kind} {name!r} is declared as {spelled!r}")
                setattr(obj, "name", name)  # noqa: B010 - a ClassVar, not a field
            self._items[name] = obj
            for alias in aliases:
                self._aliases[alias] = name
            return obj

        return decorator

    def _load_plugins(self) -> None:
        if self._plugins_loaded:
            return
        self._plugins_loaded = True
        assert self.entry_point_group is not None  # noqa: S101 - guarded by _plugins_loaded
        for ep in entry_points(group=self.entry_point_group):
            try:
                ep.load()  # importing the module runs its @register decorators
            except Exception as exc:  # a broken plugin must not take the harness down
                raise HarnessError(
                    f"Could not load {self.kind} plugin {ep.name!r} ({ep.value}): "
                    f"{type(exc).__name__}: {exc}"
                ) from exc

    def canonical(self, name: str) -> str:
        """Return the canonical name for ``name`` or an alias of it."""
        self._load_plugins()
        if name in self._items:
            return name
        if name in self._aliases:
            return self._aliases[name]
        candidates = [*self._items, *self._aliases]
        # Names are case-insensitive ("PDQ" is pdq); the canonical spelling goes into results.
        folded = {c.lower(): c for c in candidates}
        if name.lower() in folded:
            return self.canonical(folded[name.lower()])
        close_folded = difflib.get_close_matches(name.lower(), list(folded), n=5, cutoff=0.6)
        matches = [folded[m] for m in close_folded]
        # Suggest canonical names only, once each, in order of closeness.
        close = list(dict.fromkeys(self._aliases.get(m, m) for m in matches))[:3]
        kinds = f"{self.kind[:-1]}ies" if self.kind.endswith("y") else f"{self.kind}s"
        hint = (
            f" Did you mean {' or '.join(repr(c) for c in close)}?"
            if close
            else f" Known {kinds}: {', '.join(sorted(self._items))}."
        )
        raise UnknownNameError(f"Unknown {self.kind} {quoted(name)}.{hint}")

    def get(self, name: str) -> T:
        """Return the object registered under ``name`` (or an alias)."""
        return self._items[self.canonical(name)]

    def names(self) -> list[str]:
        """Canonical names, sorted."""
        self._load_plugins()
        return sorted(self._items)

    def aliases_of(self, name: str) -> list[str]:
        """Aliases that point at the canonical ``name``."""
        return sorted(a for a, target in self._aliases.items() if target == name)

    def __contains__(self, name: object) -> bool:
        self._load_plugins()
        return name in self._items or name in self._aliases

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        self._load_plugins()
        return len(self._items)
