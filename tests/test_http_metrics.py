"""The HTTP instrumentors' metrics are not recorded by default: every request is already a span (P2).

A real Flask app under `obsdash wrap` serves requests through its test client and counts them with a metric of its
own: the spans and the app's metric are stored, the instrumentor's `http.server.*` metrics are not; with
OBSDASH_HTTP_METRICS=1 they are, and their request count equals the spans'.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.conftest import assert_no_internal_errors, child_env, query, run, wrapped

REQUESTS = 40
APP = f"""
from flask import Flask
from opentelemetry import metrics

app = Flask(__name__)
served = metrics.get_meter("shop").create_counter("shop.requests")

@app.get("/items/<int:item>")
def item(item):
    served.add(1, {{"route": "/items"}})
    return {{"item": item}}

client = app.test_client()
for i in range({REQUESTS}):
    assert client.get(f"/items/{{i}}").status_code == 200
print("served")
"""


def serve(data_dir: Path, **env: str) -> dict[str, float]:
    result = run(wrapped(data_dir, sys.executable, "-c", APP), env=child_env(**env))
    assert result.returncode == 0 and result.stdout == "served\n", result.stderr
    assert_no_internal_errors(result.stderr)
    spans = query(data_dir, "SELECT count(*) AS n FROM spans WHERE http_route = '/items/<int:item>'")
    assert spans[0]["n"] == REQUESTS
    rows = query(
        data_dir,
        "SELECT name, sum(coalesce(count, value)) AS n FROM metric_points GROUP BY name ORDER BY name",
    )
    return {row["name"]: row["n"] for row in rows}


@pytest.mark.parametrize("keep", [False, True])
def test_http_metrics_only_when_asked(data_dir: Path, keep: bool) -> None:
    metrics = serve(data_dir, **({"OBSDASH_HTTP_METRICS": "1"} if keep else {}))
    assert metrics.get("shop.requests") == REQUESTS  # the app's own meter is real either way
    http = {name: n for name, n in metrics.items() if name.startswith("http.server.")}
    if keep:
        assert http.get("http.server.duration") == REQUESTS, metrics
    else:
        assert http == {}, metrics
