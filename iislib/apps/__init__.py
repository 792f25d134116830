"""The applications, on top of every other layer: the ``iislib`` command line (``cli``), the
one-image demo (``demo``, ``demo_app``), the notebooks' helpers (``paper``) and the notebook
runner behind ``make figures`` (``runner``). No library module imports them.
"""
