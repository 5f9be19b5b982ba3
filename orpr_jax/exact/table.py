"""The table of the 16 classic lost-sales cases (L = 1..4, p in {4, 9, 19, 39}, Poisson
mean 5, h = 1): the optimum against the best base stock.

Print it with ``python -m orpr_jax.exact.optimal``.
"""

from __future__ import annotations

from orpr_jax.exact.base_stock import best_base_stock
from orpr_jax.exact.value_iteration import lost_sales_optimum


#: Lead times and penalties of the classic table (Zipkin 2008a), Poisson mean 5, h = 1.
CLASSIC_LEAD_TIMES = (1, 2, 3, 4)
CLASSIC_PENALTIES = (4.0, 9.0, 19.0, 39.0)


def classic_table(lead_times=CLASSIC_LEAD_TIMES, penalties=CLASSIC_PENALTIES,
                  demand_mean: float = 5.0, holding_cost: float = 1.0) -> list[dict]:
    """Optimum and best base-stock of each (L, p) case, as rows of plain numbers."""
    rows = []
    for lead_time in lead_times:
        for p in penalties:
            opt = lost_sales_optimum(lead_time, p, demand_mean, holding_cost)
            bs = best_base_stock(lead_time, p, demand_mean, holding_cost)
            rows.append({
                "L": lead_time,
                "p": p,
                "S": opt.max_on_hand,
                "states": opt.num_states,
                "optimal_cost": opt.average_cost,
                "bracket": opt.span,
                "iterations": opt.iterations,
                "largest_order": opt.largest_order,
                "at_position_cap": opt.orders_at_position_cap,
                "optimal_seconds": opt.seconds,
                "base_stock_level": bs.level,
                "base_stock_cost": bs.average_cost,
                "gap_percent": 100.0 * (bs.average_cost / opt.average_cost - 1.0),
                "base_stock_seconds": bs.seconds,
            })
    return rows


def _main() -> None:
    header = (
        f"{'L':>2} {'p':>4} {'S':>3} {'states':>7} {'optimum':>9} {'bracket':>8} "
        f"{'iters':>5} {'max q':>5} {'at S':>5} {'sec':>6} | {'level':>5} {'base-stock':>10} "
        f"{'gap %':>6} {'sec':>6}"
    )
    print(header)
    print("-" * len(header))
    for r in classic_table():
        print(
            f"{r['L']:>2} {r['p']:>4g} {r['S']:>3} {r['states']:>7} {r['optimal_cost']:>9.4f} "
            f"{r['bracket']:>8.1e} {r['iterations']:>5} {r['largest_order']:>5} "
            f"{r['at_position_cap']:>5} {r['optimal_seconds']:>6.2f} | "
            f"{r['base_stock_level']:>5} {r['base_stock_cost']:>10.4f} "
            f"{r['gap_percent']:>6.2f} {r['base_stock_seconds']:>6.2f}",
            flush=True,
        )

