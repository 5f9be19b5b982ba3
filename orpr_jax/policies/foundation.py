"""The ORPR foundation model: a small Flax NNX Transformer over three input streams.

Tokens, in order: a learned ``[CLS]`` token, ``H / patch_len`` history patch tokens (a
linear embedding of each ``patch_len``-day patch of the per-day history features), one
attribute token (linear projection of ``attrs``), one category-embedding token and one
business-target token; a learned positional embedding is added to all of them. A pre-LN
Transformer encoder mixes them and two heads read the final ``[CLS]`` state: logits over
the ``V`` inventory-days bins and a scalar value.

:class:`FoundationPolicy` wraps a model as a policy pytree ``policy(obs, key) -> [R]``
orders: the model is stored as ``(graphdef, state)`` with the graphdef static and the state
traced, so :func:`orpr_jax.evaluate` does not recompile when the weights change.

References:
    ORPR: "Pretrain-then-Reinforce" for inventory replenishment, arXiv:2512.19001.
    Nie et al., "A Time Series is Worth 64 Words" (PatchTST), ICLR 2023 (patch tokens).
    Xiong et al., "On Layer Normalization in the Transformer Architecture", ICML 2020
    (pre-LN).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
from flax import nnx, struct
from jaxtyping import Array, Float

from orpr_jax._validation import check_int
from orpr_jax.policies.features import (
    ModelInputs,
    make_inputs,
    num_attr_features,
    num_history_features,
    num_target_features,
)
from orpr_jax.policies.heuristics import InventoryDays
from orpr_jax.sim.types import Observation

#: Tokens besides the history patches: [CLS], attributes, category, targets.
_NUM_EXTRA_TOKENS = 4


def _default_patch_len(history_length: int) -> int:
    """Weekly patches when H allows it, else the largest divisor of H not above 7."""
    return max(p for p in range(1, 8) if history_length % p == 0)


@dataclasses.dataclass(frozen=True)
class FoundationConfig:
    """Architecture of :class:`FoundationModel` (static: every field fixes a shape).

    Attributes:
        num_bins: V, number of inventory-days bins (the policy's actions).
        history_length: H, days in the input history (must match the inputs).
        patch_len: days per history token; ``history_length`` must be a multiple.
        d_model: width of the token embeddings.
        num_heads: attention heads; ``d_model`` must be a multiple.
        num_layers: Transformer encoder blocks.
        mlp_dim: hidden width of each block's MLP.
        num_categories: size of the category embedding table (indices are clipped into
            ``[0, num_categories)``).
        dropout_rate: dropout in attention, MLP and residual branches, in ``[0, 1)``.
    """

    num_bins: int
    history_length: int
    patch_len: int = 7
    d_model: int = 144
    num_heads: int = 4
    num_layers: int = 4
    mlp_dim: int = 480
    num_categories: int = 16
    dropout_rate: float = 0.1

    def __post_init__(self) -> None:
        for name in (
            "num_bins",
            "history_length",
            "patch_len",
            "d_model",
            "num_heads",
            "num_layers",
            "mlp_dim",
            "num_categories",
        ):
            check_int(name, getattr(self, name), 1)
        if self.history_length % self.patch_len != 0:
            raise ValueError(
                f"patch_len={self.patch_len} is not allowed; it must divide "
                f"history_length={self.history_length}"
            )
        if self.d_model % self.num_heads != 0:
            raise ValueError(
                f"num_heads={self.num_heads} is not allowed; it must divide "
                f"d_model={self.d_model}"
            )
        rate = self.dropout_rate
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0.0 <= rate < 1.0:
            raise ValueError(f"dropout_rate={rate!r} is not allowed; expected a number in [0, 1)")

    @property
    def num_patches(self) -> int:
        """History tokens, ``history_length // patch_len``."""
        return self.history_length // self.patch_len

    @property
    def num_tokens(self) -> int:
        """Sequence length seen by the encoder."""
        return self.num_patches + _NUM_EXTRA_TOKENS

    @classmethod
    def preset(
        cls, name: str, num_bins: int, history_length: int, num_categories: int, **overrides
    ) -> FoundationConfig:
        """A named size (``"default"`` or ``"small"``, see :data:`PRESETS`) for the data's
        bins, history length and categories; ``overrides`` replace any field."""
        if name not in PRESETS:
            raise ValueError(f"preset={name!r} is not allowed; use one of {sorted(PRESETS)}")
        fields = dict(patch_len=_default_patch_len(history_length), **PRESETS[name])
        fields.update(overrides)
        return cls(num_bins=num_bins, history_length=history_length,
                   num_categories=num_categories, **fields)

    @classmethod
    def default(
        cls, num_bins: int, history_length: int, num_categories: int, **overrides
    ) -> FoundationConfig:
        """Paper-sized model (about 0.9M parameters for V=30, H=28, 16 categories)."""
        return cls.preset("default", num_bins, history_length, num_categories, **overrides)

    @classmethod
    def small(
        cls, num_bins: int, history_length: int, num_categories: int, **overrides
    ) -> FoundationConfig:
        """CPU-demo model (about 90k parameters)."""
        return cls.preset("small", num_bins, history_length, num_categories, **overrides)


#: Sizes of the named presets of :meth:`FoundationConfig.preset`.
PRESETS = {
    "default": dict(d_model=144, num_heads=4, num_layers=4, mlp_dim=480, dropout_rate=0.1),
    "small": dict(d_model=64, num_heads=4, num_layers=2, mlp_dim=192, dropout_rate=0.1),
}


class _Block(nnx.Module):
    """Pre-LN encoder block: ``x + Drop(MHA(LN(x)))`` then ``x + Drop(MLP(LN(x)))``."""

    def __init__(self, config: FoundationConfig, *, rngs: nnx.Rngs):
        d = config.d_model
        self.ln_attn = nnx.LayerNorm(d, rngs=rngs)
        self.attn = nnx.MultiHeadAttention(
            num_heads=config.num_heads,
            in_features=d,
            dropout_rate=config.dropout_rate,
            decode=False,
            rngs=rngs,
        )
        self.ln_mlp = nnx.LayerNorm(d, rngs=rngs)
        self.fc1 = nnx.Linear(d, config.mlp_dim, rngs=rngs)
        self.fc2 = nnx.Linear(config.mlp_dim, d, rngs=rngs)
        self.dropout = nnx.Dropout(config.dropout_rate, rngs=rngs)

    def __call__(self, x: jax.Array, *, deterministic: bool) -> jax.Array:
        y = self.attn(self.ln_attn(x), deterministic=deterministic)
        x = x + self.dropout(y, deterministic=deterministic)
        y = self.fc2(self.dropout(jax.nn.gelu(self.fc1(self.ln_mlp(x))), deterministic=deterministic))
        return x + self.dropout(y, deterministic=deterministic)


class FoundationModel(nnx.Module):
    """Transformer over history patches, attributes, category and targets.

    Call as ``logits, value = model(inputs, deterministic=True)`` with ``inputs`` a
    :class:`~orpr_jax.policies.features.ModelInputs` of ``N`` samples; ``logits`` is
    ``[N, V]`` (unnormalised log-probabilities over the bins) and ``value`` is ``[N]``.
    Pass ``deterministic=False`` to apply dropout (uses the model's ``dropout`` RNG stream).
    """

    def __init__(self, config: FoundationConfig, *, rngs: nnx.Rngs):
        self.config = config
        d = config.d_model
        self.patch_embed = nnx.Linear(config.patch_len * num_history_features, d, rngs=rngs)
        self.attr_embed = nnx.Linear(num_attr_features, d, rngs=rngs)
        self.target_embed = nnx.Linear(num_target_features, d, rngs=rngs)
        self.category_embed = nnx.Embed(config.num_categories, d, rngs=rngs)
        init = nnx.initializers.normal(0.02)
        self.cls_token = nnx.Param(init(rngs.params(), (1, 1, d), jnp.float32))
        self.pos_embed = nnx.Param(init(rngs.params(), (1, config.num_tokens, d), jnp.float32))
        self.embed_dropout = nnx.Dropout(config.dropout_rate, rngs=rngs)
        self.blocks = nnx.List([_Block(config, rngs=rngs) for _ in range(config.num_layers)])
        self.ln_final = nnx.LayerNorm(d, rngs=rngs)
        self.policy_head = nnx.Linear(d, config.num_bins, rngs=rngs)
        self.value_head = nnx.Linear(d, 1, rngs=rngs)

    def _check(self, inputs: ModelInputs) -> int:
        c = self.config
        h = inputs.history
        if h.ndim != 3 or h.shape[1:] != (c.history_length, num_history_features):
            raise ValueError(
                f"history has shape {tuple(h.shape)}; expected "
                f"[N, H={c.history_length}, F_h={num_history_features}]"
            )
        n = h.shape[0]
        expected = {
            "attrs": (inputs.attrs, (n, num_attr_features), f"[N={n}, F_a={num_attr_features}]"),
            "category": (inputs.category, (n,), f"[N={n}]"),
            "targets": (
                inputs.targets,
                (n, num_target_features),
                f"[N={n}, F_t={num_target_features}]",
            ),
        }
        for name, (x, shape, text) in expected.items():
            if tuple(x.shape) != shape:
                raise ValueError(f"{name} has shape {tuple(x.shape)}; expected {text}")
        return n

    def __call__(
        self, inputs: ModelInputs, *, deterministic: bool = True, detach_value: bool = False
    ) -> tuple[Float[Array, "N V"], Float[Array, " N"]]:
        """Returns ``(logits [N, V], value [N])``.

        ``detach_value=True`` stops the value head's gradient at the shared encoder, so a
        critic loss trains only the head and cannot disturb the (pretrained) policy.

        Raises:
            ValueError: if an input's shape does not match the config.
        """
        c = self.config
        n = self._check(inputs)
        patches = inputs.history.astype(jnp.float32).reshape(
            n, c.num_patches, c.patch_len * num_history_features
        )
        category = jnp.clip(inputs.category.astype(jnp.int32), 0, c.num_categories - 1)
        tokens = jnp.concatenate(
            [
                jnp.broadcast_to(self.cls_token[...], (n, 1, c.d_model)),
                self.patch_embed(patches),
                self.attr_embed(inputs.attrs.astype(jnp.float32))[:, None, :],
                self.category_embed(category)[:, None, :],
                self.target_embed(inputs.targets.astype(jnp.float32))[:, None, :],
            ],
            axis=1,
        )
        x = self.embed_dropout(tokens + self.pos_embed[...], deterministic=deterministic)
        for block in self.blocks:
            x = block(x, deterministic=deterministic)
        cls = self.ln_final(x[:, 0])
        value_in = jax.lax.stop_gradient(cls) if detach_value else cls
        return self.policy_head(cls), self.value_head(value_in)[:, 0]


def count_params(model: nnx.Module) -> int:
    """Number of trainable scalars (``nnx.Param`` leaves) in ``model``."""
    return sum(int(x.size) for x in jax.tree.leaves(nnx.state(model, nnx.Param)))


@struct.dataclass
class FoundationPolicy:
    """A :class:`FoundationModel` as a policy pytree: ``policy(obs, key) -> [R]`` orders.

    The model is held as ``(graphdef, state)``: ``graphdef`` is static, ``state`` is traced,
    so replacing the weights (``policy.replace(state=...)``) reuses compiled programs.
    Each row's bin is the argmax of the logits (``greedy``) or a sample from them, mapped to
    ``v = v_values[bin]`` and played as :class:`~orpr_jax.policies.InventoryDays`.

    Attributes:
        graphdef: the model's ``nnx.GraphDef`` (static).
        state: the model's ``nnx.State`` (traced).
        v_values: ``[V]`` inventory days of each bin.
        alpha: ``[]`` or ``[R]`` service target fed to the model.
        target_turnover: ``[]`` or ``[R]`` target turnover days fed to the model.
        greedy: argmax (True) or sample (False) the bin (static).
        window: moving-average window of the forecast (static).
        expected_v: play the mean of v under the predicted distribution instead of one
            bin's v (static; ``greedy`` is then ignored).
    """

    graphdef: nnx.GraphDef = struct.field(pytree_node=False)
    state: nnx.State
    v_values: jax.Array
    alpha: jax.Array
    target_turnover: jax.Array
    greedy: bool = struct.field(pytree_node=False, default=True)
    window: int = struct.field(pytree_node=False, default=28)
    expected_v: bool = struct.field(pytree_node=False, default=False)

    @property
    def model(self) -> FoundationModel:
        """A fresh module built from ``(graphdef, state)``."""
        return nnx.merge(self.graphdef, self.state)

    def inputs(self, obs: Observation) -> ModelInputs:
        """Model inputs for ``obs`` (``[R, ...]`` leaves)."""
        return make_inputs(obs, self.alpha, self.target_turnover)

    def logits(self, obs: Observation) -> Float[Array, "R V"]:
        """``[R, V]`` logits of the bins (deterministic: no dropout)."""
        logits, _ = self.model(self.inputs(obs), deterministic=True)
        return logits

    def logits_and_value(self, obs: Observation) -> tuple[jax.Array, jax.Array]:
        """``([R, V] logits, [R] value)`` (deterministic: no dropout)."""
        return self.model(self.inputs(obs), deterministic=True)

    def choose(self, obs: Observation, key: jax.Array) -> jax.Array:
        """``[R]`` int32 bin per row: argmax if ``greedy`` else a categorical sample."""
        logits = self.logits(obs)
        if self.greedy:
            return jnp.argmax(logits, axis=-1).astype(jnp.int32)
        return jax.random.categorical(key, logits, axis=-1).astype(jnp.int32)

    def __call__(self, obs: Observation, key: jax.Array) -> jax.Array:
        if self.expected_v:
            v = jax.nn.softmax(self.logits(obs), axis=-1) @ self.v_values
        else:
            v = self.v_values[self.choose(obs, key)]
        return InventoryDays(v=v, window=self.window)(obs, key)


def make_foundation_policy(
    model: FoundationModel,
    v_values,
    *,
    greedy: bool = True,
    alpha: float = 0.95,
    target_turnover: float = 14.0,
    window: int = 28,
    expected_v: bool = False,
) -> FoundationPolicy:
    """Wraps ``model`` as a policy for :func:`orpr_jax.evaluate` / :func:`orpr_jax.rollout`.

    Args:
        model: a :class:`FoundationModel`.
        v_values: ``[V]`` inventory days of each bin (e.g. ``v_min..v_max``).
        greedy: argmax the bin (True) or sample it with the policy's key (False).
        alpha: service target fed to the model (scalar or ``[R]``).
        target_turnover: target turnover days fed to the model (scalar or ``[R]``).
        window: forecast window in days (at most the env's ``history_length``).
        expected_v: play the mean v of the predicted distribution instead of one bin.

    Raises:
        ValueError: if ``v_values`` is not ``[V]`` with ``V = config.num_bins``, or
            ``window`` is not a positive integer.
    """
    v_values = jnp.asarray(v_values, jnp.float32)
    num_bins = model.config.num_bins
    if v_values.shape != (num_bins,):
        raise ValueError(
            f"v_values has shape {tuple(v_values.shape)}; expected [V={num_bins}]"
        )
    if isinstance(window, bool) or not isinstance(window, int) or window < 1:
        raise ValueError(f"window={window!r} is not allowed; expected an integer >= 1")
    graphdef, state = nnx.split(model)
    return FoundationPolicy(
        graphdef=graphdef,
        state=state,
        v_values=v_values,
        alpha=jnp.asarray(alpha, jnp.float32),
        target_turnover=jnp.asarray(target_turnover, jnp.float32),
        greedy=bool(greedy),
        window=window,
        expected_v=bool(expected_v),
    )
