"""The scripts behind the recorded tables, each ``python -m orpr_jax.studies.NAME``:
``demo`` (tuned heuristics and the OR policy), ``or_policy``, ``pretrained``, ``alignment``,
``expert`` (promotion guidance) and ``classic`` (the lost-sales grid against the exact
optimum). Studies may import anything in the library; nothing in the library imports them.
"""
