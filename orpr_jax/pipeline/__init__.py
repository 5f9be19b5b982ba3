"""The pipeline behind ``orpr run``: :class:`RunConfig` and its presets (``config``), one
function per stage (``stages``: data, label, pretrain; ``align``: align, evaluate), and the
run folder with resume (``run``). The only library code that chains stages: it may import
every package below it (sim, data, policies, labels, exact, train, evaluation), never
``studies`` or ``cli``.
"""

from orpr_jax.pipeline.config import (
    ALGORITHMS,
    PLAY_MODES,
    PRESETS,
    STAGES,
    AlignSettings,
    RunConfig,
)
from orpr_jax.pipeline.run import prepare_run_dir, run_pipeline
from orpr_jax.pipeline.stages import load_data_dir, load_run_data

__all__ = [
    "ALGORITHMS",
    "PLAY_MODES",
    "PRESETS",
    "STAGES",
    "AlignSettings",
    "RunConfig",
    "load_data_dir",
    "load_run_data",
    "prepare_run_dir",
    "run_pipeline",
]
