"""Web views on the worker's server: Prometheus metrics and a liveness check."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from streams.app import app, registry


@app.page("/metrics")
async def metrics_view(web, request):  # type: ignore[no-untyped-def]
    """Prometheus scrape endpoint (this worker's registry only)."""
    return web.bytes(generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST})


@app.page("/health")
async def health_view(web, request):  # type: ignore[no-untyped-def]
    return web.json({"status": "ok", "app": app.conf.id})
