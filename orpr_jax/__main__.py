"""``python -m orpr_jax`` runs the ``orpr`` command."""

from orpr_jax.cli import main

raise SystemExit(main())
