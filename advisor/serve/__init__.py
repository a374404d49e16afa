"""`advisor serve`: a policy bundle behind HTTP, deciding through the bundle's own code.

`inputs` checks requests, `deciding` decides them (control, treatment, shadow), `predictionlog`
writes every decision off the request path, `metrics` counts for Prometheus, `app` is the
FastAPI application, `server` runs it under uvicorn, `measure` times it for the analysis.
FastAPI and uvicorn come with the `serve` extra; nothing outside this package imports them.
"""

from __future__ import annotations

SERVE_EXTRA = frozenset({"fastapi", "starlette", "uvicorn", "prometheus_client"})
NEEDS_EXTRA = "needs the serve extra: pip install 'advisor-ship[serve]'"


def missing_extra(exc: ImportError) -> bool:
    """Whether an ImportError is a library of the serve extra not being installed."""
    return bool(exc.name) and exc.name.split(".")[0] in SERVE_EXTRA
