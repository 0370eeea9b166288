"""`obsdash wrap`: run a command with obsdash injected, as that command (same pid, signals, stdio, status).

Injection is a folder holding only a `sitecustomize.py`, put first on PYTHONPATH, and settings in OBSDASH_*
variables; then this process replaces itself with the command (`os.execve`), as `opentelemetry-instrument` does.
Every Python process the command starts inherits the environment, so workers and subprocesses are covered too.

OTLP out: `--otlp-endpoint URL` sets OTEL_EXPORTER_OTLP_ENDPOINT for the command, and the in-app side then also
sends everything through the official OTLP exporter (obsdash_instrumenters/otlp.py); the user's own
OTEL_EXPORTER_OTLP_* variables do the same. Either way the exporter must be installed: checked here, before the
app starts, so a missing extra is one line and status 2 rather than telemetry silently kept local.
"""

from __future__ import annotations

import importlib.util
import os
import shlex
import shutil
import time
from pathlib import Path
from typing import NoReturn

from obsdash.datadir import DataDir, prepare
from obsdash.errors import ObsdashError


def sitecustomize_dir() -> Path:
    """The folder holding obsdash's sitecustomize.py (found without importing the in-app package)."""
    spec = importlib.util.find_spec("obsdash_instrumenters")
    if spec is None or not spec.submodule_search_locations:
        raise ObsdashError(
            "obsdash is not installed completely (obsdash_instrumenters is missing)", hint="reinstall obsdash"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "_sitecustomize"


def derive_service_name(command: list[str]) -> str:
    """`python app.py` → app, `python -m pkg.mod` → pkg.mod, `gunicorn ...` → gunicorn."""
    program = os.path.basename(command[0])
    if not program.startswith("python"):
        return program
    args = command[1:]
    while args:
        arg = args.pop(0)
        if arg == "-m" and args:
            return args[0]
        if arg == "-c":
            return "python"
        if arg.startswith("-"):
            continue
        return Path(arg).stem if arg.endswith(".py") else Path(arg).name
    return "python"


def new_run_id() -> str:
    """A sortable, readable run id: start time plus 4 random hex digits."""
    return time.strftime("%Y%m%d-%H%M%S-") + os.urandom(2).hex()


def build_environment(
    base: dict[str, str], data_dir: DataDir, command: list[str], service_name: str | None, run_id: str
) -> dict[str, str]:
    """The command's environment: ours added, the user's kept."""
    env = dict(base)
    inject = str(sitecustomize_dir())
    previous = env.get("PYTHONPATH")
    env["PYTHONPATH"] = inject + (os.pathsep + previous if previous else "")
    env["OBSDASH_DIR"] = str(data_dir.root)
    env["OBSDASH_RUN_ID"] = run_id
    env["OBSDASH_ROOT_PID"] = str(os.getpid())  # exec keeps the pid
    env["OBSDASH_COMMAND"] = shlex.join(command)
    env["OBSDASH_SERVICE_NAME"] = (
        service_name or base.get("OTEL_SERVICE_NAME") or derive_service_name(command)
    )
    # The stock OpenTelemetry distro defaults logs to OTLP/gRPC and fails when it is absent; say "none" unless
    # the user chose an exporter.
    for signal in ("TRACES", "METRICS", "LOGS"):
        env.setdefault(f"OTEL_{signal}_EXPORTER", "none")
    env[CAPTURE_CONTENT] = genai_capture_mode(base.get(CAPTURE_CONTENT))
    return env


CAPTURE_CONTENT = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"


def genai_capture_mode(value: str | None) -> str:
    """What the GenAI instrumentors get for CAPTURE_CONTENT: prompts and replies stay out unless asked for.

    Unset, empty or false-like → `NO_CONTENT`, said explicitly. `true`-like → `SPAN_ONLY`: opentelemetry-util-genai
    (1.3b0) reads the variable as a mode name and takes `true` for an invalid value, i.e. no capture. A mode name
    (`span_only`, `event_only`, `span_and_event`, `no_content`) or anything else is passed on as given; util-genai
    treats an unknown value as `NO_CONTENT`.
    """
    cleaned = (value or "").strip().lower()
    if cleaned in ("", "false", "0", "no", "off"):
        return "NO_CONTENT"
    if cleaned in ("true", "1", "yes", "on"):
        return "SPAN_ONLY"
    return value or ""


def resolve_program(program: str) -> str:
    """The executable to run, or one clear error."""
    if os.sep in program:
        if os.path.isfile(program) and os.access(program, os.X_OK):
            return program
        raise ObsdashError(f"cannot run {program}: not an executable file")
    found = shutil.which(program)
    if found is None:
        raise ObsdashError(f"command not found: {program}", hint="check the name and your PATH")
    return found


def otlp_environment(env: dict[str, str], endpoint: str | None) -> dict[str, str]:
    """`env` with the OTLP endpoint set when given; ObsdashError when OTLP is asked for but cannot be sent."""
    from obsdash_instrumenters.otlp_config import PACKAGES, configured

    if endpoint is not None:
        from urllib.parse import urlsplit

        parts = urlsplit(endpoint)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ObsdashError(
                f"--otlp-endpoint {endpoint!r} is not an http(s) URL", hint="e.g. http://127.0.0.1:4318"
            )
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = endpoint
    for protocol in sorted(set(configured(env).values())):
        if protocol not in PACKAGES:
            raise ObsdashError(
                f"OTLP protocol {protocol!r} is not supported: the Python exporter speaks http/protobuf or grpc",
                hint="set OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf",
            )
        module, distribution = PACKAGES[protocol]
        if importlib.util.find_spec(module) is None:
            extra = "'obsdash[otlp]'" if protocol == "http/protobuf" else distribution
            raise ObsdashError(
                f"OTLP export over {protocol} needs {distribution}, which is not installed",
                hint=f"pip install {extra}",
            )
    return env


def wrap(
    data_dir: DataDir, command: list[str], service_name: str | None = None, otlp_endpoint: str | None = None
) -> NoReturn:
    """Replace this process with `command`, instrumented (and exporting over OTLP when asked)."""
    if not command:
        raise ObsdashError(
            "nothing to run", hint="usage: obsdash wrap [--data-dir DIR] [--] COMMAND [ARGS...]"
        )
    executable = resolve_program(command[0])
    env = build_environment(dict(os.environ), data_dir, command, service_name, new_run_id())
    env = otlp_environment(env, otlp_endpoint)  # before anything is created: a refusal leaves no trace
    prepare(data_dir)
    try:
        os.execve(executable, command, env)
    except OSError as exc:
        raise ObsdashError(f"cannot run {command[0]}: {exc.strerror or exc}") from None
