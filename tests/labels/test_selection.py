"""Per-date MCKP label selection: MILP, batched LP (cvxpylayers) and JAX dual agree.

Brute force on tiny instances, solver agreement on realistic ones, masks and padding,
monotonicity in the service level, infeasible budgets, validation errors, jit/vmap.
"""

import itertools

import cvxpy as cp
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from benchmarks.selection_instances import benchmark_selection, random_problem, tiny_problem
from orpr_jax.labels.selection import batched_lp
from orpr_jax.labels.selection.batched_lp import solve_batched_lp
from orpr_jax.labels.selection.dual import dual_select, solve_dual
from orpr_jax.labels.selection.milp import solve_milp
from orpr_jax.labels.selection.problem import (
    FEAS_ATOL,
    FEAS_RTOL,
    STATUS_FAILED,
    STATUS_INFEASIBLE,
    STATUS_OK,
    evaluate_choice,
    infeasible_report,
    make_problem,
    min_loss_choice,
)

# ----------------------------------------------------------------------------- helpers


def brute_force(problem):
    """Exact optimum by enumerating all V^G choices (same tolerance as the solvers)."""
    stock = np.asarray(problem.stock, np.float64)
    loss = np.asarray(problem.loss, np.float64)
    budget = np.asarray(problem.budget, np.float64)
    allowed = np.asarray(problem.allowed)
    b, g, v = stock.shape
    best = np.full(b, np.inf)
    for i in range(b):
        scale = max(budget[i], np.where(allowed[i], loss[i], 0).max(-1).sum())
        limit = budget[i] * (1 + FEAS_RTOL) + FEAS_ATOL * scale
        for combo in itertools.product(range(v), repeat=g):
            rows = np.arange(g)
            if not allowed[i, rows, combo].all():
                continue
            if loss[i, rows, combo].sum() <= limit:
                best[i] = min(best[i], stock[i, rows, combo].sum())
    return best


def assert_valid(problem, result, *, feasible=None):
    """Active choices allowed, inactive -1, totals consistent, nothing NaN."""
    choice = np.asarray(result.choice)
    active = np.asarray(problem.active)
    allowed = np.asarray(problem.allowed)
    assert np.all(choice[~active] == -1)
    idx = np.clip(choice, 0, None)[..., None]
    assert np.all(np.take_along_axis(allowed, idx, -1)[..., 0][active])
    obj, tot, within = evaluate_choice(problem, choice)
    np.testing.assert_allclose(np.asarray(result.objective, np.float64), obj, rtol=1e-5)
    np.testing.assert_allclose(np.asarray(result.total_loss, np.float64), tot, rtol=1e-5,
                               atol=1e-6 * float(np.max(np.asarray(problem.budget))) + 1e-9)
    assert np.all(np.isfinite(np.asarray(result.objective)))
    assert np.all(np.isfinite(np.asarray(result.total_loss)))
    reported = np.asarray(result.feasible)
    np.testing.assert_array_equal(within[reported], True)
    if feasible is not None:
        np.testing.assert_array_equal(reported, feasible)


def rel_gap(result, reference):
    return (np.asarray(result.objective, np.float64) - reference) / reference


SOLVERS = {"milp": solve_milp, "dual": solve_dual, "batched_lp": solve_batched_lp}
# One realistic shape shared by most tests, so each solver compiles / canonicalises once.
B, G, V = 4, 30, 30


# ------------------------------------------------------------------ tiny vs brute force


@pytest.fixture(scope="module")
def tiny():
    problems = [tiny_problem(seed) for seed in range(3)]
    batch = jax.tree.map(lambda *xs: jnp.concatenate(xs), *problems)
    return batch, brute_force(batch)


def test_milp_matches_brute_force(tiny):
    problem, best = tiny
    out = solve_milp(problem)
    assert out.solver == "milp"
    assert_valid(problem, out, feasible=np.ones(len(best), bool))
    np.testing.assert_allclose(out.objective, best, rtol=1e-6)


@pytest.mark.parametrize("name", ["dual", "batched_lp"])
def test_fast_solvers_close_to_brute_force(tiny, name):
    problem, best = tiny
    out = SOLVERS[name](problem)
    assert_valid(problem, out, feasible=np.ones(len(best), bool))
    gap = rel_gap(out, best)
    # Three groups only: one coarse step can matter; the 0.5% target is for G >= 10.
    assert gap.min() >= -1e-6, gap
    assert gap.max() <= 0.05, gap
    assert np.mean(gap) <= 0.01, gap


# -------------------------------------------------------------- realistic agreement


@pytest.fixture(scope="module")
def realistic():
    problem = random_problem(11, B, G, V)
    return problem, {name: fn(problem) for name, fn in SOLVERS.items()}


def test_all_solvers_feasible_on_realistic(realistic):
    problem, out = realistic
    for name in SOLVERS:
        result = out[name]
        assert result.solver == name
        assert_valid(problem, result, feasible=np.ones(B, bool))
        np.testing.assert_array_equal(result.status, STATUS_OK)


def test_dual_within_half_percent_of_milp(realistic):
    _, out = realistic
    gap = rel_gap(out["dual"], out["milp"].objective)
    assert gap.min() >= -1e-4, gap  # the MILP is optimal (up to tolerances)
    assert gap.max() <= 0.005, gap


def test_batched_lp_within_two_percent_of_milp(realistic):
    _, out = realistic
    gap = rel_gap(out["batched_lp"], out["milp"].objective)
    assert gap.min() >= -1e-4, gap
    assert gap.max() <= 0.02, gap


# -------------------------------------------------------------------- masks, padding


def test_masks_respected_and_padding_ignored():
    real = G - 4
    base = random_problem(3, B, real, V)
    rng = np.random.default_rng(0)
    base_allowed = np.asarray(base.allowed)
    allowed = base_allowed & (rng.random(base_allowed.shape) < 0.5)
    # Keep each group's largest allowed v (its lowest loss) so the budget stays reachable.
    last = base_allowed.shape[-1] - 1 - np.argmax(base_allowed[..., ::-1], axis=-1)
    np.put_along_axis(allowed, last[..., None], True, axis=-1)
    small = make_problem(base.stock, base.loss, base.budget, allowed)

    def pad(x, fill):
        x = np.asarray(x)
        return np.concatenate([x, np.full(x.shape[:1] + (4,) + x.shape[2:], fill)], axis=1)

    # The same problems plus 4 padding groups full of junk that must not count.
    padded = make_problem(pad(base.stock, 1e6), pad(base.loss, 1e6), base.budget,
                              pad(allowed, False), pad(np.ones((B, real), bool), False))
    for name, fn in SOLVERS.items():
        a, b = fn(small), fn(padded)
        assert_valid(small, a)
        assert_valid(padded, b)
        np.testing.assert_array_equal(np.asarray(b.choice)[:, real:], -1, err_msg=name)
        np.testing.assert_array_equal(np.asarray(b.feasible), np.asarray(a.feasible))
        if name != "batched_lp":  # the LP's interior point may round a near-tie apart
            np.testing.assert_allclose(np.asarray(b.objective), np.asarray(a.objective),
                                       rtol=1e-5, err_msg=name)


# ---------------------------------------------------------------------- monotonicity


def test_tighter_service_never_lowers_total_v():
    base = random_problem(21, B, G, V, alpha=0.90, monotone=True)
    stock = np.asarray(base.stock)
    loss = np.asarray(base.loss)
    assert np.all(np.diff(stock, axis=-1) > 0) and np.all(np.diff(loss, axis=-1) < 0)
    sales = np.asarray(base.budget) / 0.10
    previous = {"milp": None, "dual": None}
    for alpha in (0.90, 0.94, 0.97, 0.99):
        problem = make_problem(stock, loss, (1 - alpha) * sales, base.allowed)
        for name in previous:
            out = SOLVERS[name](problem)
            total_v = np.asarray(out.choice).sum(-1)
            if previous[name] is not None:
                assert np.all(total_v >= previous[name]), (name, alpha, total_v, previous[name])
            previous[name] = total_v


# ---------------------------------------------------------------- infeasible budgets


@pytest.fixture(scope="module")
def mixed():
    base = random_problem(7, B, G, V)
    allowed = np.asarray(base.allowed).copy()
    allowed[[1, 3], :, 3:] = False  # at most 3 days of cover: far more loss than the budget
    problem = make_problem(base.stock, base.loss, base.budget, allowed)
    floor = evaluate_choice(problem, min_loss_choice(problem))[1]
    feasible = np.ones(B, bool)
    feasible[[1, 3]] = False
    assert np.all(floor[~feasible] > 2 * np.asarray(problem.budget)[~feasible])
    return problem, feasible


@pytest.mark.parametrize("name", list(SOLVERS))
def test_infeasible_budget_reported_with_min_loss_fallback(mixed, name):
    problem, feasible = mixed
    out = SOLVERS[name](problem)
    assert_valid(problem, out, feasible=feasible)
    np.testing.assert_array_equal(infeasible_report(problem, out), [1, 3])
    assert np.all(np.isfinite(np.asarray(out.objective)))
    np.testing.assert_array_equal(np.asarray(out.status)[~feasible], STATUS_INFEASIBLE)
    np.testing.assert_array_equal(np.asarray(out.status)[feasible], STATUS_OK)
    fallback = min_loss_choice(problem)
    np.testing.assert_array_equal(np.asarray(out.choice)[~feasible], fallback[~feasible])


def test_min_loss_fallback_breaks_ties_by_lowest_stock():
    stock = np.array([[[5.0, 1.0, 3.0], [2.0, 2.0, 2.0]]])
    loss = np.array([[[1.0, 1.0, 4.0], [3.0, 0.5, 0.5]]])
    # Group 0: loss 1 at j=0 and j=1, j=1 is cheaper; group 1: loss 0.5 at j=1, j=2 (tie
    # in stock too: the lower index). Minimum total loss 1.5 > budget 1.0: infeasible.
    problem = make_problem(stock, loss, [1.0])
    np.testing.assert_array_equal(min_loss_choice(problem), [[1, 1]])
    for fn in SOLVERS.values():
        out = fn(problem)
        assert not bool(np.asarray(out.feasible)[0])
        np.testing.assert_array_equal(np.asarray(out.choice), [[1, 1]])
        np.testing.assert_allclose(np.asarray(out.objective), [3.0])


@pytest.mark.parametrize(
    "case",
    ["zero_loss", "zero_stock", "zero_budget", "single_choice", "all_zero", "extreme_scales"],
)
def test_degenerate_inputs_never_nan(case):
    rng = np.random.default_rng(1)
    stock = np.cumsum(rng.uniform(0.1, 1, (2, 3, 4)), -1)
    loss = np.cumsum(rng.uniform(0.1, 1, (2, 3, 4)), -1)[..., ::-1].copy()
    loss[..., -1] = 0.0  # a zero-loss candidate in every group
    budget = np.array([1.0, 2.0])
    expect = stock.min(-1).sum(-1)
    if case == "zero_loss":
        loss[:] = 0.0
    elif case == "zero_stock":
        stock[:] = 0.0
        expect = np.zeros(2)
    elif case == "zero_budget":
        budget[:] = 0.0
        expect = stock[..., -1].sum(-1)
    elif case == "single_choice":
        stock, loss = stock[..., -1:], loss[..., -1:]
        expect = stock[..., 0].sum(-1)
    elif case == "extreme_scales":
        # Scaled copies of a problem whose optimum is the minimum-stock choice.
        budget = 2 * np.take_along_axis(loss, stock.argmin(-1)[..., None], -1)[..., 0].sum(-1)
        stock, loss, budget = stock * 1e30, loss * 1e-30, budget * 1e-30
        expect = stock.min(-1).sum(-1)
    else:
        stock[:] = 0.0
        loss[:] = 0.0
        budget[:] = 0.0
        expect = np.zeros(2)
    # Tiled to the tiny fixture's batch so the jitted dual reuses its compilation.
    tile = lambda x: np.tile(x, (6,) + (1,) * (np.ndim(x) - 1))  # noqa: E731
    problem = make_problem(tile(stock), tile(loss), tile(budget))
    for name, fn in SOLVERS.items():
        out = fn(problem)
        assert_valid(problem, out, feasible=np.ones(12, bool))
        np.testing.assert_allclose(np.asarray(out.objective), tile(expect), rtol=1e-5,
                                   atol=1e-6, err_msg=name)


# ------------------------------------------------------------------- solver failures


def test_milp_falls_back_then_reports_failure(monkeypatch, tiny):
    problem, best = tiny
    real_solve = cp.Problem.solve
    calls = []

    def flaky(self, *args, solver=None, **kwargs):
        calls.append(solver)
        if solver == cp.HIGHS:
            raise cp.error.SolverError("HiGHS down")
        return real_solve(self, *args, solver=solver, **kwargs)

    monkeypatch.setattr(cp.Problem, "solve", flaky)
    out = solve_milp(problem)
    assert cp.SCIPY in calls
    np.testing.assert_allclose(out.objective, best, rtol=1e-6)
    np.testing.assert_array_equal(out.status, STATUS_OK)

    def broken(self, *args, **kwargs):
        raise cp.error.SolverError("all down")

    monkeypatch.setattr(cp.Problem, "solve", broken)
    out = solve_milp(problem)
    np.testing.assert_array_equal(out.status, STATUS_FAILED)
    np.testing.assert_array_equal(out.feasible, True)  # the fallback meets the budget
    np.testing.assert_array_equal(out.choice, min_loss_choice(problem))


def test_batched_lp_chunks_agree(realistic):
    problem, out = realistic
    chunked = solve_batched_lp(problem, batch_size=3, n_jobs=1)
    np.testing.assert_allclose(chunked.objective, out["batched_lp"].objective, rtol=1e-6)


def test_batched_lp_failure_reported_with_repaired_choice(monkeypatch, tiny):
    problem, _ = tiny

    def broken_layer(*args, **kwargs):
        raise RuntimeError("solver failed")

    monkeypatch.setattr(batched_lp, "_lp_layer", lambda g, v: broken_layer)
    out = solve_batched_lp(problem)
    np.testing.assert_array_equal(out.status, STATUS_FAILED)
    assert_valid(problem, out, feasible=np.ones(len(out.status), bool))


# ----------------------------------------------------------------------- jit and vmap


def test_dual_jit_equals_no_jit(tiny):
    problem, _ = tiny
    jitted = solve_dual(problem)
    with jax.disable_jit():
        eager = solve_dual(problem)
    for field in ("choice", "feasible", "status"):
        np.testing.assert_array_equal(np.asarray(getattr(jitted, field)),
                                      np.asarray(getattr(eager, field)))
    for field in ("objective", "total_loss"):  # fusion may round float32 sums apart
        np.testing.assert_allclose(np.asarray(getattr(jitted, field)),
                                   np.asarray(getattr(eager, field)), rtol=1e-6)


def test_dual_does_not_retrace_for_new_data(tiny):
    problem, _ = tiny
    solve_dual(problem)
    before = solve_dual._cache_size()
    other = jax.tree.map(lambda a: a[::-1], problem)  # same shapes, other numbers
    solve_dual(other)
    assert solve_dual._cache_size() == before


def test_dual_vmap_equals_loop(realistic):
    problem, out = realistic
    single = jax.jit(dual_select)
    for b in range(problem.shape[0]):
        one = single(problem.stock[b], problem.loss[b], problem.budget[b],
                     problem.allowed[b], problem.active[b])
        np.testing.assert_array_equal(np.asarray(one.choice), np.asarray(out["dual"].choice[b]))
        np.testing.assert_allclose(np.asarray(one.objective),
                                   np.asarray(out["dual"].objective[b]), rtol=1e-6)


def test_dual_breakpoint_ties_same_however_compiled():
    # Problem 0's multiplier search ends on a breakpoint where two candidates of a group
    # tie in exact arithmetic. XLA fuses stock + lam * loss into a multiply-add in some
    # fusions and not in others, which used to break that tie one way in the search and
    # the other in the choice taken from it: the single-problem compilation then
    # returned a worse choice than the batched one.
    problem = random_problem(30, B, G, V)
    batch = solve_dual(problem)
    single = jax.jit(dual_select)
    for b in range(B):
        one = single(problem.stock[b], problem.loss[b], problem.budget[b],
                     problem.allowed[b], problem.active[b])
        np.testing.assert_array_equal(np.asarray(one.choice), np.asarray(batch.choice[b]))


def test_dual_float64_under_x64():
    with jax.enable_x64(True):
        problem = tiny_problem(4)
        assert problem.stock.dtype == jnp.float64
        out = solve_dual(problem)
        assert out.objective.dtype == jnp.float64
        assert_valid(problem, out)


# ------------------------------------------------------------------------ validation


GOOD = {
    "stock": np.ones((2, 3, 4)),
    "loss": np.ones((2, 3, 4)),
    "budget": np.full(2, 5.0),
    "allowed": np.ones((2, 3, 4), bool),
    "active": np.ones((2, 3), bool),
}


def _with(field, value):
    args = dict(GOOD)
    args[field] = value
    return args


def _at(field, index, value):
    arr = np.array(GOOD[field], dtype=float if field in ("stock", "loss", "budget") else None)
    arr[index] = value
    return _with(field, arr)


@pytest.mark.parametrize(
    ("args", "pattern"),
    [
        (_with("stock", np.ones((2, 3))), r"stock must have shape \[B, G, V\].*\(2, 3\)"),
        (_with("stock", np.ones((0, 3, 4))), r"stock must have B, G, V >= 1"),
        (_with("stock", np.full((2, 3, 4), "a")), r"stock must be a real numeric array"),
        (_with("loss", np.ones((2, 3, 5))), r"loss must have the shape of stock"),
        (_with("budget", np.ones(3)), r"budget must have shape \(2,\)"),
        (_with("allowed", np.ones((2, 3), bool)), r"allowed must have the shape of stock"),
        (_with("active", np.ones((2, 4), bool)), r"active must have shape \(2, 3\)"),
        (_at("stock", (1, 2, 3), np.nan), r"stock must be finite.*nan.*\(1, 2, 3\)"),
        (_at("loss", (0, 1, 0), np.inf), r"loss must be finite.*inf.*\(0, 1, 0\)"),
        (_at("stock", (0, 0, 1), -1.0), r"stock must be >= 0; got -1\.0 at index \(0, 0, 1\)"),
        (_at("loss", (1, 0, 0), -0.5), r"loss must be >= 0; got -0\.5"),
        (_at("budget", 1, -2.0), r"budget must be >= 0; got -2\.0 at index \(1,\)"),
        (_at("budget", 0, np.nan), r"budget must be finite"),
        (_with("allowed", np.full((2, 3, 4), 2)), r"allowed must be boolean .* got value 2"),
        (_with("active", np.full((2, 3), 0.5)), r"active must be boolean .* got value 0\.5"),
        (_with("allowed", np.full((2, 3, 4), "x")), r"allowed must be boolean .*dtype"),
        (_at("allowed", (1, 2), False), r"empty group: active group \(b=1, g=2\)"),
    ],
)
def test_make_problem_errors_name_field_and_value(args, pattern):
    with pytest.raises(ValueError, match=pattern):
        make_problem(**args)


def test_inactive_group_may_be_empty_and_masks_accept_zero_one():
    allowed = np.ones((2, 3, 4), int)
    allowed[1, 2] = 0
    active = np.ones((2, 3), int)
    active[1, 2] = 0
    problem = make_problem(GOOD["stock"], GOOD["loss"], GOOD["budget"], allowed, active)
    assert problem.allowed.dtype == jnp.bool_ and problem.shape == (2, 3, 4)


def test_helper_errors():
    problem = make_problem(**GOOD)
    with pytest.raises(ValueError, match=r"choice must have shape \(2, 3\)"):
        evaluate_choice(problem, np.zeros((2, 2), int))
    with pytest.raises(ValueError, match=r"choice must be in \[0, 4\).*got 4 at \(b=0, g=1\)"):
        evaluate_choice(problem, np.array([[0, 4, 0], [0, 0, 0]]))
    out = solve_milp(problem)
    small = jax.tree.map(lambda a: a[:1], problem)
    with pytest.raises(ValueError, match=r"selection.feasible must have shape \(1,\)"):
        infeasible_report(small, out)
    with pytest.raises(ValueError, match=r"solver must be an installed MILP-capable"):
        solve_milp(problem, solver="CLARABEL")


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"alpha": 1.5}, r"alpha must be in \[0, 1\]; got 1\.5"),
        ({"noise": -0.1}, r"noise must be >= 0"),
        ({"active_frac": 0.0}, r"active_frac must be in \(0, 1\]"),
        ({"B": 0}, r"B must be >= 1; got 0"),
        ({"rows_per_group": 0}, r"rows_per_group must be >= 1"),
    ],
)
def test_random_problem_errors(kwargs, pattern):
    args = {"key_or_seed": 0, "B": 1, "G": 2, "V": 3, **kwargs}
    with pytest.raises(ValueError, match=pattern):
        random_problem(**args)


def test_random_problem_shapes_and_determinism():
    a = random_problem(jax.random.key(2), 2, 5, 7, active_frac=0.6)
    b = random_problem(jax.random.key(2), 2, 5, 7, active_frac=0.6)
    assert a.shape == (2, 5, 7)
    np.testing.assert_array_equal(np.asarray(a.stock), np.asarray(b.stock))
    np.testing.assert_array_equal(np.asarray(a.active), [[True] * 3 + [False] * 2] * 2)
    assert np.all(np.asarray(a.budget) > 0)


def test_benchmark_smoke():
    out = benchmark_selection(12, 3, 4, seed=1)  # the tiny shape: compiled already
    for key in ("milp_solves_per_s", "batched_lp_solves_per_s", "fresh_lp_loop_solves_per_s",
                "dual_solves_per_s"):
        assert out[key] > 0
    assert out["max_rel_gap_fast_vs_milp"] <= 0.05
