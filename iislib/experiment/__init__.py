"""The experiment: datasets (``data``), the models x robots x images sweep with its verified
cache (``sweep``: ``evaluate``, ``summary``), the statistics and the paper's findings
(``stats``) and the model cards (``cards``, ``python -m iislib.experiment.cards``).
"""
