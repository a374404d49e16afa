"""`advisor serve`: a policy bundle behind HTTP, deciding through the bundle's own code.

`inputs` checks requests, `deciding` decides them (control, treatment, shadow), `predictionlog`
writes every decision off the request path, `metrics` counts for Prometheus, `app` is the
FastAPI application, `server` runs it under uvicorn, `measure` times it for the analysis.
FastAPI and uvicorn come with the `serve` extra; nothing outside this package imports them.
"""
