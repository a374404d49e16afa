"""Boosting fast, then finishing with a small step: LightGBM's training loop in two phases.

On large data a large step (learning rate) reaches a good model in few rounds, but its last
trees overshoot: on some signals it stops 1 % or more above the validation log loss that the
small step reaches. `boost` therefore trains at the large step until the validation loss stops
improving, drops the rounds past the best one, and goes on from there at the small step (the
same booster, continued training) until the validation loss stops improving again. The second
phase starts close to the optimum, so it needs few rounds; the validation split decides how
many, and it may add none.
"""

from __future__ import annotations

from dataclasses import dataclass

REFINE_RATE = 0.05  # the small step: the usual default, reached in the second phase
# The second phase's patience at most. It starts close to the optimum: on the five scale
# generators at 1M rows (benchmarks/refine_patience.py, seed 0, 150 refine rounds recorded) no
# improvement of its validation loss came more than 30 rounds after the one before, so waiting
# 30 kept the same trees as waiting 100, and the other 70 rounds were trees it dropped.
REFINE_PATIENCE = 30


@dataclass(frozen=True)
class Boosted:
    """The trained booster (cut at the best round) and how each phase went."""

    booster: object
    trees: int
    first_phase_trees: int
    valid_log_loss: float


def patience_for(rate: float, rounds_at_small_step: int) -> int:
    """Rounds without improvement before stopping: the same distance along the boosting path
    at every step (`rounds_at_small_step` at 0.05, proportionally fewer at larger steps)."""
    return max(10, round(rounds_at_small_step * REFINE_RATE / rate))


def _valid_loss(booster) -> float:
    return float(booster.eval_valid()[0][2])


def boost(
    params: dict,
    train_set,
    valid_set,
    max_rounds: int,
    rounds_at_small_step: int,
    refine_rate: float | None = REFINE_RATE,
) -> Boosted:
    """Boost at `params["learning_rate"]` with early stopping on `valid_set`; when that step is
    larger than `refine_rate`, continue from the best round at `refine_rate` until the
    validation loss stops improving again (waiting at most REFINE_PATIENCE rounds there).
    `max_rounds` bounds the rounds of both phases."""
    import lightgbm as lgb

    rate = params["learning_rate"]
    refine = refine_rate is not None and refine_rate < rate
    booster = lgb.train(
        params,
        train_set,
        num_boost_round=max_rounds,
        valid_sets=[valid_set],
        callbacks=[lgb.early_stopping(patience_for(rate, rounds_at_small_step), verbose=False)],
        keep_training_booster=refine,
    )
    first = int(booster.best_iteration or booster.current_iteration())
    if not refine:
        return Boosted(booster, first, first, float("nan"))
    while booster.current_iteration() > first:
        booster.rollback_one_iter()
    booster.reset_parameter({"learning_rate": refine_rate})
    best, best_loss = first, _valid_loss(booster)
    patience = min(patience_for(refine_rate, rounds_at_small_step), REFINE_PATIENCE)
    while booster.current_iteration() < max_rounds:
        if booster.update():  # no split improves the training loss: nothing more to learn
            break
        loss = _valid_loss(booster)
        if loss < best_loss:
            best, best_loss = booster.current_iteration(), loss
        elif booster.current_iteration() - best >= patience:
            break
    model = booster.model_to_string(num_iteration=best)
    booster.free_dataset()
    return Boosted(lgb.Booster(model_str=model), best, first, best_loss)
