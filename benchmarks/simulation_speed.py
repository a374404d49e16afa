"""The A/B Monte Carlo costs the same whatever the volume × days of the planned experiment.

Each simulated experiment draws sufficient statistics (multinomial counts over the distinct
per-unit costs, or the normal approximation for continuous costs), never the units, so the
time depends on the number of simulations and distinct cost values only.

    uv run python benchmarks/simulation_speed.py
"""

from __future__ import annotations

import time

import numpy as np

from advisor.stats.simulation import SIMULATIONS, simulate_experiments

BASE_VOLUME, DAYS = 400, 30
REPEATS = 5


def best_time(control: np.ndarray, treatment: np.ndarray, n: int) -> float:
    best = float("inf")
    for seed in range(REPEATS):
        start = time.perf_counter()
        simulate_experiments(control, treatment, n, n, simulations=SIMULATIONS, seed=seed)
        best = min(best, time.perf_counter() - start)
    return best


def naive_time(control: np.ndarray, n: int) -> float:
    """For contrast: drawing every unit of every experiment (one arm), in chunks."""
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    for _ in range(0, SIMULATIONS, 100):
        rng.choice(control, size=(100, n)).mean(axis=1)
    return time.perf_counter() - start


def main() -> None:
    rng = np.random.default_rng(0)
    cases = {
        "three cost values (multinomial)": (
            rng.choice([0.0, 1200.0, 8000.0], 20000, p=[0.6, 0.3, 0.1]),
            rng.choice([0.0, 1200.0, 8000.0], 20000, p=[0.7, 0.25, 0.05]),
        ),
        "continuous costs (normal)": (rng.lognormal(3, 1, 20000), rng.lognormal(2.9, 1, 20000)),
    }
    print(f"{SIMULATIONS} simulated experiments per run, best of {REPEATS}; {DAYS} days, 50/50")
    print(f"{'costs':34} {'volume':>10} {'units per arm':>15} {'seconds':>9}")
    for label, (control, treatment) in cases.items():
        for factor in (1, 10, 1000):
            volume = BASE_VOLUME * factor
            n = volume * DAYS // 2
            seconds = best_time(control, treatment, n)
            print(f"{label:34} {f'{factor}x':>10} {n:>15,} {seconds:>9.4f}")
    control = cases["three cost values (multinomial)"][0]
    print("For contrast, drawing every unit instead (one arm only):")
    for factor in (1, 10):
        n = BASE_VOLUME * factor * DAYS // 2
        print(f"{'unit by unit':34} {f'{factor}x':>10} {n:>15,} {naive_time(control, n):>9.4f}")


if __name__ == "__main__":
    main()
