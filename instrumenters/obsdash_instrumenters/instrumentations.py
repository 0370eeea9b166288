"""Which OpenTelemetry contrib instrumentor loads when the app imports which library.

Each instrumentor loads in its own `try`: one that fails or does not support the installed version is skipped
and its reason recorded, never the others, never the app. `OTEL_PYTHON_DISABLED_INSTRUMENTATIONS` is honoured
with the same names as `opentelemetry-instrument`.
"""

from __future__ import annotations

import sys
import time

TYPE_CHECKING = False  # `typing` costs ~10 ms at start-up; mypy still reads the block below
if TYPE_CHECKING:
    from collections.abc import Callable
    from types import ModuleType

    from obsdash_instrumenters.import_hook import PostImportFinder


class Instrumentation:
    """One instrumentor and the module whose import triggers it."""

    def __init__(self, name: str, trigger: str, target: str) -> None:
        self.name = name
        self.trigger = trigger
        self.target = target  # "module:Class"


INSTRUMENTATIONS = (
    Instrumentation("flask", "flask", "opentelemetry.instrumentation.flask:FlaskInstrumentor"),
    Instrumentation("fastapi", "fastapi", "opentelemetry.instrumentation.fastapi:FastAPIInstrumentor"),
    Instrumentation(
        "starlette", "starlette.applications", "opentelemetry.instrumentation.starlette:StarletteInstrumentor"
    ),
    Instrumentation(
        "django", "django.core.handlers.base", "opentelemetry.instrumentation.django:DjangoInstrumentor"
    ),
    Instrumentation("requests", "requests", "opentelemetry.instrumentation.requests:RequestsInstrumentor"),
    Instrumentation("httpx", "httpx", "opentelemetry.instrumentation.httpx:HTTPXClientInstrumentor"),
    Instrumentation("urllib3", "urllib3", "opentelemetry.instrumentation.urllib3:URLLib3Instrumentor"),
    Instrumentation("urllib", "urllib.request", "opentelemetry.instrumentation.urllib:URLLibInstrumentor"),
    Instrumentation("sqlite3", "sqlite3", "opentelemetry.instrumentation.sqlite3:SQLite3Instrumentor"),
    # GenAI: one `chat <model>` span per LLM call with gen_ai.* model and token attributes, plus the
    # gen_ai.client.* metrics. Prompt and completion text only with OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT
    # (obsdash wrap sets NO_CONTENT unless the user chose). Nothing GenAI is imported before the app imports the SDK.
    Instrumentation("openai", "openai", "opentelemetry.instrumentation.genai.openai:OpenAIInstrumentor"),
    Instrumentation(
        "anthropic", "anthropic", "opentelemetry.instrumentation.genai.anthropic:AnthropicInstrumentor"
    ),
)

# name -> "instrumented" | "skipped: why" | "failed: error"; reported at exit in the run's end record.
status: dict[str, str] = {}
load_ms: dict[str, float] = {}


def _should_skip(item: Instrumentation) -> str | None:
    if item.name == "starlette" and "fastapi" in sys.modules:
        # FastAPI subclasses Starlette: instrumenting both would record every request twice.
        return "skipped: fastapi instrumentor covers it"
    return None


def _instrument(item: Instrumentation, before_first: Callable[[], None]) -> None:
    started = time.perf_counter()
    try:
        reason = _should_skip(item)
        if reason:
            status[item.name] = reason
            return
        before_first()
        module_name, class_name = item.target.split(":")
        module = __import__(module_name, fromlist=[class_name])
        instrumentor = getattr(module, class_name)()
        from opentelemetry.instrumentation.dependencies import get_dependency_conflicts

        conflict = get_dependency_conflicts(instrumentor.instrumentation_dependencies())
        if conflict is not None:
            status[item.name] = f"skipped: {conflict}"
            return
        instrumentor.instrument(skip_dep_check=True)
        if item.name == "sqlite3":
            from obsdash_instrumenters.gaps import add_sqlite_shortcuts

            add_sqlite_shortcuts()
        elif item.name in ("openai", "anthropic"):
            from obsdash_instrumenters.gaps import add_llm_timeouts

            add_llm_timeouts(item.name)
        status[item.name] = "instrumented"
    except BaseException as exc:
        status[item.name] = f"failed: {type(exc).__name__}: {exc}"
    finally:
        load_ms[item.name] = round((time.perf_counter() - started) * 1000, 2)


def install(finder: PostImportFinder, disabled: frozenset[str], before_first: Callable[[], None]) -> None:
    """Watch each trigger module; `before_first` sets up the SDK providers before any instrumentor runs."""
    for item in INSTRUMENTATIONS:
        if item.name in disabled:
            status[item.name] = "skipped: OTEL_PYTHON_DISABLED_INSTRUMENTATIONS"
            continue

        def on_import(_module: ModuleType, item: Instrumentation = item) -> None:
            _instrument(item, before_first)

        finder.watch(item.trigger, on_import)
