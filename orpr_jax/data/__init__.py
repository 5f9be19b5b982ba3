"""Data: :class:`~orpr_jax.data.dataset.InventoryData` and its env, the jd_synthetic
generator, and the user-data loader with its validation. Imports only ``sim`` (and the
validation helpers) of the project.
"""
