"""Training the compact models: ``python -m iislib.training NAME --recipe long ...``.

``train`` holds the recipes, the resumable seeded loop and the checkpoints; ``data`` the
training sets (Weizmann horses, BSDS500 minus the benchmark images). It uses each family's
adapter (``iislib.models.families``) and writes weights through ``iislib.models.compact``;
nothing in ``iislib.models`` imports it.
"""
