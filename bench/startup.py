"""P1 — start-up added by `obsdash wrap python -c pass`, against bare Python and `opentelemetry-instrument`.

`python -m bench.startup [--runs 21] [--verbose]` runs each configuration once per round, interleaved (A, B, C,
A, B, C, ...), after one untimed warm-up round, and reports the median wall time of each; "added" is a median
minus bare Python's median. The configurations:

- bare `python -c pass`;
- `opentelemetry-instrument python -c pass` (the peer: opentelemetry-distro with every instrumentor this venv
  installs for obsdash, exporters `none`), and the same with the GenAI instrumentors disabled, because they import
  the whole openai and anthropic SDKs when those are installed;
- `obsdash wrap -- python -c pass` as a user runs it: the obsdash CLI (a Python process) execs the command;
- the in-app part alone: `python -c pass` with the environment `obsdash wrap` prepares (obsdash.wrap), no CLI;
- the CLI alone: `obsdash wrap -- true` (the CLI's start-up and exec, no Python inside).

Target (quality.md P1): ≤ 60 ms added and ≤ 0.25× the peer's added time. `--verbose` adds `-X importtime`'s top
offenders of the wrapped run (the modules bare Python does not import) and of the CLI.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench._common import markdown_table, median, ms, p95
from bench.headline import Headline

BIN = Path(sys.executable).parent
ADDED_LIMIT_MS = 60.0
RATIO_LIMIT = 0.25
EXPORTERS_NONE = {f"OTEL_{s}_EXPORTER": "none" for s in ("TRACES", "METRICS", "LOGS")}
GENAI = "openai,anthropic"

BARE = "bare python"
PEER = "opentelemetry-instrument"
PEER_LIGHT = "opentelemetry-instrument, GenAI off"
WRAP = "obsdash wrap (whole)"
IN_APP = "obsdash in-app only"
CLI = "obsdash wrap CLI alone"


@dataclass
class Config:
    """One way of starting `python -c pass`."""

    name: str
    argv: list[str]
    env: dict[str, str]


def base_env() -> dict[str, str]:
    """This environment without obsdash's or OpenTelemetry's settings, exporters `none` for every config."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OBSDASH_", "OTEL_"))}
    env.pop("PYTHONPATH", None)
    # Users run with bytecode caches; this machine sets PYTHONDONTWRITEBYTECODE=1, which recompiles every module
    # on every start and made each configuration's imports several times slower (obsdash 70.9 -> 44.2 ms added).
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return {**env, **EXPORTERS_NONE}


def in_app_env(base: dict[str, str], data_dir: Path, command: list[str]) -> dict[str, str]:
    """The environment `obsdash wrap` gives the command (its own function, so the two cannot drift apart)."""
    from obsdash.datadir import DataDir, prepare
    from obsdash.wrap import build_environment, new_run_id

    directory = prepare(DataDir(data_dir))
    return build_environment(base, directory, command, None, new_run_id())


def configs(data_dir: Path, light_peer: bool = True) -> list[Config]:
    """Every configuration measured, bare first."""
    env = base_env()
    python = [sys.executable, "-c", "pass"]
    wrap = [str(BIN / "obsdash"), "wrap", "--data-dir", str(data_dir), "--"]
    found = [
        Config(BARE, python, env),
        Config(PEER, [str(BIN / "opentelemetry-instrument"), *python], env),
        Config(WRAP, [*wrap, *python], env),
        Config(IN_APP, python, in_app_env(env, data_dir, python)),
        Config(CLI, [*wrap, "true"], env),
    ]
    if light_peer:
        light = {**env, "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": GENAI}
        found.insert(2, Config(PEER_LIGHT, found[1].argv, light))
    return found


def time_once(config: Config) -> float:
    """Seconds from spawn to exit of one run; fails loudly if the command fails."""
    started = time.perf_counter()
    done = subprocess.run(
        config.argv, env=config.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{config.name} exited {done.returncode}: {done.stderr.decode()[-2000:]}")
    return elapsed


@dataclass
class StartupResult:
    """Every sample, per configuration, in seconds."""

    runs: int
    samples: dict[str, list[float]] = field(default_factory=dict)
    wrapped_starts: int = 0
    expected_starts: int = 0

    def median(self, name: str) -> float:
        return median(self.samples[name])

    def added(self, name: str) -> float:
        """Median minus bare Python's median, in seconds."""
        return self.median(name) - self.median(BARE)


def measure(runs: int = 21, light_peer: bool = True) -> StartupResult:
    """Time every configuration `runs` times, interleaved, after one untimed warm-up round."""
    with tempfile.TemporaryDirectory(prefix="obsdash-bench-startup-") as tmp:
        data_dir = Path(tmp) / "obsdash"
        all_configs = configs(data_dir, light_peer)
        result = StartupResult(runs, {c.name: [] for c in all_configs})
        for round_no in range(-1, runs):
            for config in all_configs:
                seconds = time_once(config)
                if round_no >= 0:
                    result.samples[config.name].append(seconds)
        # Honesty check: every wrapped Python run (whole and in-app, warm-up included) recorded its start.
        result.wrapped_starts = count_starts(data_dir)
        result.expected_starts = 2 * (runs + 1)
    return result


def count_starts(data_dir: Path) -> int:
    """How many process starts the wrapped runs wrote to the spool."""
    spool = data_dir / "spool"
    return sum(p.read_bytes().count(b'"event":"start"') for p in spool.glob("runs-*.jsonl"))


def table(result: StartupResult) -> str:
    """Median, p95, added time and its ratio to the peer's, per configuration."""
    peer_added = result.added(PEER)
    rows = []
    for name, samples in result.samples.items():
        added = result.added(name)
        ratio = "" if name == BARE else f"{added / peer_added:.3f}"
        rows.append([name, ms(median(samples)), ms(p95(samples)), "" if name == BARE else ms(added), ratio])
    return markdown_table(["configuration", "median ms", "p95 ms", "added ms", "added × peer's"], rows)


def headline(result: StartupResult) -> list[Headline]:
    """The P1 row: obsdash wrap's added time against the peer's."""
    added_ms = result.added(WRAP) * 1000
    peer_ms = result.added(PEER) * 1000
    ratio = added_ms / peer_ms
    note = f"in-app {result.added(IN_APP) * 1000:.1f} ms, CLI {result.added(CLI) * 1000:.1f} ms"
    if PEER_LIGHT in result.samples:
        light_ms = result.added(PEER_LIGHT) * 1000
        note += f"; peer with GenAI off {light_ms:,.0f} ms → {added_ms / light_ms:.2f}×"
    met = added_ms <= ADDED_LIMIT_MS and ratio <= RATIO_LIMIT
    what = "start-up added, `obsdash wrap python -c pass`"
    target = f"≤ {ADDED_LIMIT_MS:g} ms, ≤ {RATIO_LIMIT}×"
    return [Headline("P1", what, added_ms, peer_ms, "ms", "otel-instrument", ratio, target, met, note)]


# -- -X importtime ------------------------------------------------------------------------------------------

IMPORT_LINE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \| (\s*)(\S+)")


def import_times(stderr: str) -> list[tuple[str, int, int, int]]:
    """(module, self µs, cumulative µs, depth) of every line of `-X importtime` output."""
    found = []
    for line in stderr.splitlines():
        match = IMPORT_LINE.match(line)
        if match:
            found.append((match[4], int(match[1]), int(match[2]), len(match[3]) // 2))
    return found


def importtime_report(top: int = 12) -> str:
    """The wrapped run's imports that bare Python does not make, and the CLI's, biggest first."""
    with tempfile.TemporaryDirectory(prefix="obsdash-bench-importtime-") as tmp:
        data_dir = Path(tmp) / "obsdash"
        env = {**base_env(), "PYTHONPROFILEIMPORTTIME": "1"}
        python = [sys.executable, "-c", "pass"]
        bare = subprocess.run(python, env=env, capture_output=True, text=True, check=True).stderr
        wrapped = subprocess.run(
            python, env=in_app_env(env, data_dir, python), capture_output=True, text=True, check=True
        ).stderr
        wrap = [str(BIN / "obsdash"), "wrap", "--data-dir", str(data_dir), "--", "true"]
        cli = subprocess.run(wrap, env=env, capture_output=True, text=True, check=True).stderr
    bare_modules = {m for m, *_ in import_times(bare)}
    extra = [row for row in import_times(wrapped) if row[0] not in bare_modules]
    cli_rows = import_times(cli)
    parts = [
        f"in-app: {len(extra)} modules bare Python does not import, "
        f"{sum(r[1] for r in extra) / 1000:.1f} ms of import time (self times summed); top by self time:",
        _import_table(sorted(extra, key=lambda r: -r[1])[:top]),
        f"CLI (`obsdash wrap -- true`): {len(cli_rows)} modules, "
        f"{sum(r[1] for r in cli_rows) / 1000:.1f} ms; top-level imports by cumulative time:",
        _import_table(sorted((r for r in cli_rows if r[3] == 0), key=lambda r: -r[2])[:top]),
    ]
    return "\n\n".join(parts)


def _import_table(rows: list[tuple[str, int, int, int]]) -> str:
    cells = [[m, f"{s / 1000:.2f}", f"{c / 1000:.2f}"] for m, s, c, _ in rows]
    return markdown_table(["module", "self ms", "cumulative ms"], cells)


def main(argv: list[str] | None = None) -> int:
    """Measure, print the table (and the import-time offenders with --verbose)."""
    parser = argparse.ArgumentParser(prog="python -m bench.startup", description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=21, help="timed rounds (21)")
    parser.add_argument("--no-light-peer", action="store_true", help="skip the peer with GenAI disabled")
    parser.add_argument("--verbose", action="store_true", help="also show -X importtime's top offenders")
    args = parser.parse_args(argv)
    result = measure(args.runs, light_peer=not args.no_light_peer)
    print(f"P1 — median of {args.runs} interleaved rounds; load average {os.getloadavg()[0]:.2f}")
    print(table(result))
    row = headline(result)[0]
    verdict = "met" if row.met else "MISSED"
    print(
        f"\nobsdash wrap adds {row.value:.1f} ms, the peer {row.peer:.0f} ms: {row.ratio:.3f}× "
        f"(target {row.target}: {verdict}); {row.note}"
    )
    print(f"wrapped runs that recorded their start: {result.wrapped_starts} of {result.expected_starts}")
    if args.verbose:
        print("\n" + importtime_report())
    return 0


if __name__ == "__main__":
    sys.exit(main())
