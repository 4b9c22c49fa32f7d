"""Registries of importers and exporters.

Each kind is an entry-point group (``kataster.importers``, ``kataster.exporters``); the
built-ins register in ``pyproject.toml`` exactly as a third-party plugin would. Plugins are
imported lazily, when first used.
"""

from __future__ import annotations

from importlib.metadata import entry_points

from pipeline.errors import PluginError

GROUPS = {"importer": "kataster.importers", "exporter": "kataster.exporters"}


def names(kind):
    """Registered names of a kind (``importer`` or ``exporter``), sorted."""
    return sorted(ep.name for ep in entry_points(group=GROUPS[kind]))


def load(kind, name):
    """The object registered as ``name``; unknown names raise an error listing valid ones."""
    for ep in entry_points(group=GROUPS[kind]):
        if ep.name == name:
            try:
                return ep.load()
            except ImportError as err:
                raise PluginError(f"{kind} {name!r} ({ep.value}) cannot be loaded: {err}") from err
    raise PluginError(f"unknown {kind} {name!r}; choose one of: {', '.join(names(kind))}")
