"""The scripts behind the recorded tables, each ``python -m orpr_jax.studies.NAME``:
``demo`` (tuned heuristics and the OR policy), ``pretrained``, ``alignment``, ``expert``
(promotion guidance) and ``classic`` (the lost-sales grid against the exact optimum);
``or_policy`` holds the OR-policy comparison that ``demo`` runs. Studies may import
anything in the library but ``cli``; nothing in the library imports them.
"""
