"""The library's front door: `advise()`, what `advisor.advise` is.

It joins the rooms a notebook user does not want to join by hand: the case is resolved, the
analysis runs (`advisor.analysis.pipeline`), its values become a `Result` (`advisor.artefacts`),
and with `track=` the run is logged to MLflow (`advisor.track`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from advisor.analysis.pipeline import Progress, analyse
from advisor.artefacts.result import Result
from advisor.core.case import Case, resolve_case
from advisor.core.errors import InputError

if TYPE_CHECKING:
    import pandas as pd


def _service_timer():
    """The latency stage's figures through the real service (`--measure-service`)."""
    from advisor.serve import NEEDS_EXTRA, missing_extra

    try:
        from advisor.serve.timing import measure_service
    except ImportError as exc:
        if missing_extra(exc):
            raise InputError(f"--measure-service {NEEDS_EXTRA}") from None
        raise
    return measure_service


def advise(
    case: Case | str | Path | pd.DataFrame,
    *,
    progress: Progress | None = None,
    track: bool | str | None = None,
    register: str | None = None,
    measure_service: bool = False,
    policies: Mapping[str, object] | None = None,
    **kwargs,
) -> Result:
    """Run every stage for a case and return the Result.

    `case` is a Case, a case-file path, or data (a path or a DataFrame) with `target=`,
    `costs=` and the decision context as keyword arguments (see `case_from_arguments`).
    `track` logs the run to MLflow (`True`: MLflow's default store, or a tracking URI), and
    `register` names the registered model that the recommended policy becomes (see `tracking`).
    `measure_service` also times every policy through the real service over HTTP (the serve
    extra), and the realtime-ml check then reads that figure.
    `policies` adds your own fitted classifiers by name (`{"scorecard": estimator}`, anything
    with `predict_proba` and `classes_` matching the target): evaluated as given, never
    refitted, and bundled with skops like any other policy.
    """
    if track or register:
        from advisor.track.tracking import check_request

        check_request(track, register)
    resolved = resolve_case(case, **kwargs)
    if policies:
        if not isinstance(policies, Mapping):
            raise InputError("expected a mapping of name -> fitted estimator", where="policies")
        resolved = replace(resolved, models={**resolved.models, **policies})
    timer = _service_timer() if measure_service else None
    result = Result.from_analysis(analyse(resolved, progress=progress, time_service=timer))
    if track:
        from advisor.track.tracking import track_result

        track_result(result, uri=None if track is True else track, register=register)
    return result


def advise_partitioned(
    source: str | Path,
    *,
    target: str,
    costs,
    scheduler: str | None = None,
    fit_rows: int | None = None,
    progress: Progress | None = None,
    cluster: dict | None = None,
    fit_engine: str = "sample",
    **kwargs,
) -> Result:
    """`advise` for a folder (or glob) of Parquet partitions on a Dask cluster: the policies
    are fitted on a seeded sample, every test row is scored on the workers (see
    `advisor.analysis.partitioned`). `scheduler` is a Dask scheduler's address (default: a
    LocalCluster, sized by `cluster`); `fit_engine` "lightgbm-dask" refits the ML policy on
    every training row across the workers; the other keyword arguments are
    `case_from_arguments`'s."""
    from dataclasses import replace

    import pandas as pd

    from advisor.analysis.partitioned import analyse_partitioned
    from advisor.core.case import case_from_arguments

    name = kwargs.pop("name", None) or Path(str(source)).name.split(".")[0] or "analysis"

    def case_for(values: list) -> Case:
        frame = pd.DataFrame({target: pd.Series(values, dtype=object)})
        case = case_from_arguments(frame, target=target, costs=costs, name=name, **kwargs)
        return replace(case, frame=None)

    analysis = analyse_partitioned(
        source,
        case_for,
        target=target,
        scheduler=scheduler,
        fit_rows=fit_rows,
        progress=progress,
        cluster=cluster,
        fit_engine=fit_engine,
    )
    return Result.from_analysis(analysis)
