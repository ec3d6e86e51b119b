"""The bottom layer: errors, registries, parameterised specs and their declared parameters.

Everything above imports from here (``transforms``, ``datasets_benign`` and the rest of
``harness``); nothing here imports anything above it, nor anything beyond the standard library,
so importing it costs nothing. ``tools/import_graph.py`` draws the layering and
``tests/test_layers.py`` keeps it.
"""
