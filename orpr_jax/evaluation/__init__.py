"""Measuring only: tuned baselines (base-stock, (s, S), inventory days, the incumbent rule),
metric tables, breakdowns, the run report with its plots, and the simulated field test
(DiD, matching). Imports ``sim``, ``data`` and ``policies``; never ``train``, ``labels``,
``pipeline`` or ``studies``.
"""
