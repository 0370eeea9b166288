"""S1/S2 end to end: secrets seeded through every path of a real app under `obsdash wrap` never reach the disk.

tests/apps/secrets_app.py gets 34 secret shapes (tests/apps/secrets_catalog.py: OpenAI, Anthropic, AWS, GitHub and
Slack keys, a JWT, Bearer and Basic credentials, card numbers, a private key, key=value pairs of every sensitive key
name, SQL, a --flag, URL credentials and signed query parameters) through 13 paths — span name, span attributes,
span event, span status, recorded exception, log message, log %-argument, log `extra=`, the OpenTelemetry logs API,
a metric point, an unhandled exception in a thread, the argv of the wrapped command, an LLM prompt (openai SDK
against the stand-in, capture on) — plus 13 values that are secrets only by their key name through 4 of them,
credentials and signed parameters in a real `requests` URL, Authorization / X-Api-Key / Cookie headers captured on
both sides of a Flask call, secret literals on traceback source lines (logged, and unhandled in the main thread)
and a sqlite3 statement. About 470 seeded (secret, path) pairs.

Then the whole data directory (spool, ingested segments, the DuckDB file and its WAL) is searched byte for byte,
and, because DuckDB compresses strings, every VARCHAR and JSON column of every table through `obsdash query` with
LIKE: zero hits. The non-secret parts must survive (URL paths, the text around a secret, token counts as numbers)
and the redactions are counted by kind in the run's end record. S2 without capture (no prompt text anywhere) is
tests/test_llm_capture.py::test_without_capture_no_prompt_or_reply_text_reaches_the_disk; here: with capture on,
the prompt is stored scrubbed and cut to the 4 KiB cap. Last, the scrubber failing (OBSDASH_FAULTS=scrubber) must
leave the app's output and status as bare and write nothing unscrubbed (R2, fail closed).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sample_app.standin import serve_in_thread
from tests.apps.secrets_catalog import KEYED, SHAPES, needles
from tests.conftest import APPS, assert_no_internal_errors, child_env, query, run, scalar, wrapped

APP = str(APPS / "secrets_app.py")
ARGV = [*(text for text, _, _ in SHAPES), "--api-key", "ArgvApiKeySeed97"]
NEEDLES = [*needles(), "ArgvApiKeySeed97"]
HEADERS = "Authorization,X-Api-Key,Cookie"
CAPTURE_ENV = {
    "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "true",
    "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_REQUEST": HEADERS,
    "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_CLIENT_REQUEST": HEADERS,
}
STDOUT = "url call: 200 seen\nheader call: 200 seen\nspans and metrics: done\nlogs: done\ndatabase: done\n"


@pytest.fixture(scope="module")
def standin() -> Iterator[str]:
    server, url = serve_in_thread(seed=1)
    yield url
    server.close()


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory, standin: str) -> Path:
    """The data directory of one wrapped run of secrets_app.py, every path taken, ingested into the store."""
    data_dir = tmp_path_factory.mktemp("secrets") / "data"
    result = run(
        wrapped(data_dir, sys.executable, APP, standin, *ARGV), timeout=180, env=child_env(**CAPTURE_ENV)
    )
    assert result.returncode == 1, result.stderr  # the unhandled exception at the end
    assert result.stdout == STDOUT + "llm: stop\n", result.stderr
    assert "ConnectionError: database refused the login" in result.stderr
    assert_no_internal_errors(result.stderr)
    assert scalar(data_dir, "SELECT count(*) FROM spans") > 0  # ingested: the store is on disk too
    return data_dir


@pytest.fixture(scope="module")
def stored(seeded: Path) -> dict[str, list[dict[str, Any]]]:
    """Every row of the tables the app's records land in, by table (one query)."""
    tables = ("spans", "span_events", "logs", "metric_points", "run_events")
    sql = " UNION ALL ".join(f"SELECT '{t}' AS t, to_json(x)::VARCHAR AS row FROM {t} x" for t in tables)
    rows: dict[str, list[dict[str, Any]]] = {t: [] for t in tables}
    for row in query(seeded, sql):
        record = json.loads(row["row"])
        for column in ("attributes", "details", "resource"):
            if isinstance(record.get(column), str):
                record[column] = json.loads(record[column])
        rows[row["t"]].append(record)
    return rows


def files_holding(data_dir: Path, text: str) -> list[str]:
    """The files of the data directory whose bytes hold `text`."""
    return [
        str(path.relative_to(data_dir))
        for path in sorted(data_dir.rglob("*"))
        if path.is_file() and text.encode() in path.read_bytes()
    ]


def leaks_on_disk(data_dir: Path) -> dict[str, list[str]]:
    """Each seeded secret found in a file of the data directory, with the files."""
    found = {needle: files_holding(data_dir, needle) for needle in NEEDLES}
    return {needle: files for needle, files in found.items() if files}


def stored_hits(data_dir: Path, texts: list[str]) -> dict[str, int]:
    """For each text, how many rows of any table hold it in any VARCHAR or JSON column (LIKE, through the CLI)."""
    columns: dict[str, list[str]] = {}
    for row in query(
        data_dir,
        """SELECT table_name, column_name FROM information_schema.columns
           WHERE data_type IN ('VARCHAR', 'JSON') AND table_name IN
                 (SELECT table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE')""",
    ):
        columns.setdefault(row["table_name"], []).append(row["column_name"])
    assert {"spans", "span_events", "logs", "metric_points", "run_events"} <= set(columns)

    def pattern(text: str) -> str:
        escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_").replace("'", "''")
        return f"('{text.replace(chr(39), chr(39) * 2)}', '%{escaped}%')"

    matches = " UNION ALL ".join(
        f'SELECT n.text FROM "{table}", needles n WHERE '
        + " OR ".join(f"\"{column}\"::VARCHAR LIKE n.pattern ESCAPE '\\'" for column in cols)
        for table, cols in columns.items()
    )
    rows = query(
        data_dir,
        f"""WITH needles(text, pattern) AS (VALUES {", ".join(pattern(t) for t in texts)}),
                 hits AS ({matches})
            SELECT n.text, (SELECT count(*) FROM hits h WHERE h.text = n.text) AS n FROM needles n""",
    )
    return {row["text"]: row["n"] for row in rows}


# -- nothing on disk ----------------------------------------------------------------------------------------
def test_no_seeded_secret_is_in_any_file_of_the_data_dir(seeded: Path) -> None:
    assert list((seeded / "spool" / "ingested").glob("spans-*.jsonl"))
    assert list(seeded.glob("*.duckdb"))
    assert files_holding(seeded, "plain words survive")  # the search finds what is there
    assert leaks_on_disk(seeded) == {}


def test_no_seeded_secret_is_in_any_text_column_of_the_store(seeded: Path) -> None:
    controls = ["plain words survive", "/path/seen", "PROMPT-HEAD-MARKER", "seen in an argument: "]
    hits = stored_hits(seeded, [*NEEDLES, *controls])
    assert all(hits[control] > 0 for control in controls), hits
    assert {needle: hits[needle] for needle in NEEDLES} == dict.fromkeys(NEEDLES, 0)


# -- what is not secret survives, every path was taken ------------------------------------------------------
def test_span_name_attributes_event_status_keep_their_non_secret_parts(
    stored: dict[str, list[dict[str, Any]]],
) -> None:
    (span,) = [s for s in stored["spans"] if s["name"].startswith("checkout ")]
    assert span["name"] == "checkout [REDACTED:openai_key]"
    attributes = span["attributes"]
    for i, (_, _, kind) in enumerate(SHAPES):
        assert f"[REDACTED:{kind}]" in attributes[f"seed.shape.{i}"], (i, attributes[f"seed.shape.{i}"])
    assert attributes["seed.shape.29"] == "UPDATE users SET password = '[REDACTED:password]' WHERE id = 7"
    assert attributes["seed.shape.31"] == "postgresql://[REDACTED:url_credentials]@db.internal:5432/shop"
    for name, _ in KEYED:
        assert attributes[name].startswith("[REDACTED:"), name
    assert attributes["http.request.header.authorization"] == ["[REDACTED:authorization]"]
    assert attributes["gen_ai.usage.input_tokens"] == 1234  # numbers stay numbers
    assert attributes["llm.token_count.prompt"] == 56
    assert attributes["seed.plain"] == "plain words survive"
    assert span["status_message"].startswith("checkout failed:\n[REDACTED:openai_key]\n")
    events = {e["name"]: e["attributes"] for e in stored["span_events"] if e["span_id"] == span["span_id"]}
    assert events["login attempt"]["shape.13"] == "[REDACTED:private_key]"
    assert events["exception"]["exception.message"].startswith("bad credentials:\n[REDACTED:openai_key]")


def test_urls_and_captured_headers_keep_path_and_plain_parameters(
    stored: dict[str, list[dict[str, Any]]],
) -> None:
    http = [s["attributes"] for s in stored["spans"] if s["name"].startswith("GET")]
    client_urls = sorted(a.get("http.url") or a.get("url.full") for a in http if "http.target" not in a)
    assert client_urls[0].startswith("http://127.0.0.1:") and client_urls[0].endswith("/path/seen?page=3")
    assert "[REDACTED:url_credentials]@127.0.0.1:" in client_urls[1]
    assert client_urls[1].endswith(
        "/path/seen?api_key=[REDACTED:api_key]&X-Amz-Signature=[REDACTED:signature]&token=[REDACTED:token]&page=2"
    )
    targets = sorted(a["http.target"] for a in http if "http.target" in a)
    assert targets[0].startswith("/path/seen?api_key=[REDACTED:api_key]&") and targets[0].endswith("&page=2")
    assert targets[1] == "/path/seen?page=3"
    headers = [a for a in http if "http.request.header.cookie" in a]
    assert len(headers) == 2  # client and server both captured them
    for a in headers:
        assert a["http.request.header.authorization"] == ["[REDACTED:authorization]"]
        assert a["http.request.header.cookie"] == ["[REDACTED:cookie]"]
        assert a["http.request.header.x_api_key"] == ["[REDACTED:api_key]"]


def test_sql_statement_keeps_its_shape(stored: dict[str, list[dict[str, Any]]]) -> None:
    statements = {s.get("db_statement") for s in stored["spans"]}
    assert "UPDATE users SET password = '[REDACTED:password]' WHERE id = 7" in statements


def test_logs_keep_the_text_around_the_secret(stored: dict[str, list[dict[str, Any]]]) -> None:
    bodies = [log["body"] for log in stored["logs"]]
    assert "seen in a message: [REDACTED:aws_access_key]" in bodies
    assert (
        "seen in an argument: https://maps.example.com/api?key=[REDACTED:url_param]&code=[REDACTED:url_param]"
        in bodies
    )
    (extra,) = [log["attributes"] for log in stored["logs"] if log["body"] == "seen in extra"]
    assert extra["db.password"] == "[REDACTED:password]" and extra["note"].startswith(
        "[REDACTED:openai_key]\n"
    )
    (logged,) = [log for log in stored["logs"] if log["body"] == "connect failed"]
    source_line = 'connect(password="[REDACTED:password]", key="[REDACTED:openai_key]")'
    assert source_line in logged["exception_stacktrace"]
    assert logged["exception_message"] == "database refused the login with password=[REDACTED:password]"
    (main,) = [
        log
        for log in stored["logs"]
        if log["scope"] == "obsdash.unhandled" and log["severity_text"] == "FATAL"
    ]
    assert main["body"].startswith("Unhandled ConnectionError in the main thread: database refused the login")
    assert source_line in main["exception_stacktrace"]
    (thread,) = [
        log for log in stored["logs"] if log["body"].startswith("Unhandled RuntimeError in thread worker")
    ]
    assert "[REDACTED:card_number]" in thread["body"]
    (otel,) = [log for log in stored["logs"] if log["body"].startswith("otel log:\n")]
    assert otel["attributes"]["auth.token"] == "[REDACTED:token]"


def test_metric_point_attributes(stored: dict[str, list[dict[str, Any]]]) -> None:
    (point,) = [p for p in stored["metric_points"] if p["name"] == "secrets_app.logins"]
    assert point["attributes"]["web.session"] == "[REDACTED:session]"
    assert point["attributes"]["note"].startswith("[REDACTED:openai_key]\n")


def test_argv_and_command_are_scrubbed_and_redactions_counted_by_kind(
    stored: dict[str, list[dict[str, Any]]],
) -> None:
    (start,) = [r for r in stored["run_events"] if r["event"] == "start"]
    argv = start["details"]["argv"]
    assert argv[:4] == [APP, argv[1], "[REDACTED:openai_key]", "[REDACTED:openai_key]"]
    assert argv[-2:] == ["--api-key", "[REDACTED:api_key]"]
    assert "secrets_app.py" in start["command"] and "'[REDACTED:jwt]'" in start["command"]
    (end,) = [r for r in stored["run_events"] if r["event"] == "end"]
    redactions = end["details"]["redactions"]
    kinds = {kind for _, _, kind in SHAPES} | {"truncated", "cookie", "secret", "jwt", "credential"}
    assert {kind: redactions.get(kind, 0) > 0 for kind in kinds} == dict.fromkeys(kinds, True), redactions
    assert redactions["openai_key"] >= 13 * 2  # two keys through at least 13 paths


# -- S2: LLM content ---------------------------------------------------------------------------------------
def test_llm_prompt_with_capture_on_is_stored_scrubbed_and_cut(
    stored: dict[str, list[dict[str, Any]]],
) -> None:
    (chat,) = [s for s in stored["spans"] if s["scope"] == "opentelemetry.instrumentation.genai.openai"]
    prompt = chat["attributes"]["gen_ai.input.messages"]
    assert "PROMPT-HEAD-MARKER [REDACTED:openai_key]" in prompt  # the start of the prompt...
    assert "code=[REDACTED:url_param] PROMPT-TAIL-MARKER" in prompt  # ...and its end survive, scrubbed
    assert "…[truncated " in prompt and len(prompt) <= 4096 + 40  # the middle went: the 4 KiB cap
    assert chat["attributes"]["gen_ai.usage.input_tokens"] > 1000  # a number, as the SDK reported it
    assert isinstance(chat["attributes"]["gen_ai.usage.input_tokens"], int)


# -- fail closed -------------------------------------------------------------------------------------------
def test_a_failing_scrubber_drops_records_and_the_app_does_not_notice(tmp_path: Path) -> None:
    env = {k: v for k, v in child_env(**CAPTURE_ENV).items() if k != "OBSDASH_STRICT"}
    bare = run([sys.executable, APP, "-", *ARGV], env=env)
    data_dir = tmp_path / "data"
    faulty = run(
        wrapped(data_dir, sys.executable, APP, "-", *ARGV),
        timeout=120,
        env={**env, "OBSDASH_FAULTS": "scrubber"},
    )
    assert (faulty.returncode, faulty.stdout, faulty.stderr) == (bare.returncode, bare.stdout, bare.stderr)
    assert bare.returncode == 1 and bare.stdout == STDOUT
    end = json.loads(scalar(data_dir, "SELECT details FROM run_events WHERE event = 'end'"))
    assert end["dropped"]["scrub_error"] >= 10  # spans, logs and metric points, each dropped and counted
    assert end["internal_errors"]["scrub"] >= 1
    assert scalar(data_dir, "SELECT count(*) FROM spans") == 0
    assert scalar(data_dir, "SELECT count(*) FROM logs") == 0
    start = query(data_dir, "SELECT command, details->'argv' AS argv FROM run_events WHERE event = 'start'")
    assert start == [{"command": "[REDACTED:scrub_error]", "argv": '["[REDACTED:scrub_error]"]'}]
    assert leaks_on_disk(data_dir) == {}


# -- start-up stays light ------------------------------------------------------------------------------------
@pytest.mark.parametrize(("args", "loaded"), [((), False), (("--token", "abc"), True)])
def test_the_scrubber_loads_at_start_up_only_for_a_command_that_may_hold_a_secret(
    tmp_path: Path, args: tuple[str, ...], loaded: bool
) -> None:
    """`re` plus scrub.py cost ~8 ms to import here: `python -m probe` must not pay it (P1), `--token abc` must.
    (`-m`: a script's path, which the command line holds, could contain a word the gate looks for.)"""
    (tmp_path / "probe.py").write_text("import sys\nprint('obsdash_instrumenters.scrub' in sys.modules)\n")
    command = wrapped(tmp_path / "data", sys.executable, "-m", "probe", *args)
    result = run(command, env=child_env(PYTHONPATH=str(tmp_path)))
    assert (result.returncode, result.stdout) == (0, f"{loaded}\n"), result.stderr
