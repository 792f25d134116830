"""The core: clicks, robots, the interaction loop and the metrics, on NumPy arrays only.

Nothing here imports torch, matplotlib or widgets, and nothing here imports another layer of
``iislib`` (``tests/test_layers.py`` checks it). ``model.IISModel`` is the interface the loop
calls; the networks that implement it live in ``iislib.models``.
"""
