"""How MCP tool results are written: compact plain text a model reads well, bounded, and saying when it was cut.

Every answer goes through `bounded` (MAX_CHARS) and every value from the store through `clip`, so neither a 1 MB
attribute nor a 10k-row result can flood an assistant's context. Times are UTC, as the store keeps them, with
the zone written out. Nothing here reads the store.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime

MAX_CHARS = 16_000
"""Per answer: ~4k tokens, well under the 25k-token output limit assistants such as Claude Code apply."""
VALUE_CHARS = 200
STACK_LINES = 30
STACK_CHARS = 3_000
# Control characters would garble the model's view (or a terminal showing it): shown escaped, newlines as ⏎.
_ESCAPES = {i: f"\\x{i:02x}" for i in (*range(32), 127)} | {10: "⏎", 9: " ", 13: ""}
_CARETS = re.compile(r"^\s*[\^~]+\s*$")
_NUMBER = re.compile(r"[-+$]?[0-9][0-9.,]*( ?%| ms)?|-")


def clip(value: object, limit: int = VALUE_CHARS) -> str:
    """One line of at most `limit` characters; longer text ends with `…`."""
    text = str(value).translate(_ESCAPES)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def when(value: datetime | None) -> str:
    """A store time (naive UTC) to the second: `2026-11-24 23:44:50Z`."""
    return "-" if value is None else value.strftime("%Y-%m-%d %H:%M:%SZ")


def ms(value: float | None) -> str:
    """A duration in milliseconds with 3 significant digits (or whole ms from 100 up), `-` when unknown."""
    if value is None:
        return "-"
    return f"{value:.3g} ms" if value < 100 else f"{value:.0f} ms"


def usd(value: float | None) -> str:
    """Dollars to the millionth under $1 (LLM calls cost fractions of a cent), to the cent from $100, `-` when
    unknown."""
    if value is None:
        return "-"
    return f"${value:.6f}" if abs(value) < 1 else f"${value:.4f}" if abs(value) < 100 else f"${value:,.2f}"


def percent(part: float, whole: float) -> str:
    """`part` of `whole` as a percentage with one decimal."""
    return f"{100.0 * part / whole:.1f}%" if whole else "-"


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    """Columns aligned under their headers (each cell clipped); columns of numbers right-aligned."""
    cells = [[clip(c, 80) for c in row] for row in rows]
    widths = [max([len(h)] + [len(row[i]) for row in cells]) for i, h in enumerate(headers)]
    numeric = [bool(cells) and all(_NUMBER.fullmatch(row[i]) for row in cells) for i in range(len(headers))]

    def line(values: Sequence[str]) -> str:
        parts = [v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric, strict=True)]
        return "  ".join(parts).rstrip()

    return [line(headers), *(line(row) for row in cells)]


def stack_tail(stacktrace: str | None, indent: str = "  ") -> list[str]:
    """The innermost STACK_LINES lines of a Python traceback (where the app failed), without the ^^^ marker
    lines, with a note when the outer frames were cut."""
    if not stacktrace:
        return []
    lines = [line.rstrip() for line in stacktrace.splitlines() if line.strip() and not _CARETS.match(line)]
    kept: list[str] = []
    size = 0
    for raw in reversed(lines[-STACK_LINES:]):
        line = clip(raw, 300)
        if size + len(line) > STACK_CHARS:
            break
        kept.append(line)
        size += len(line) + 1
    kept.reverse()
    cut = len(lines) - len(kept)
    head = [f"… {cut} outer lines cut"] if cut else []
    return [indent + line for line in head + kept]


def bounded(lines: Sequence[str], limit: int = MAX_CHARS) -> str:
    """The lines joined, cut at a line boundary before `limit` characters with a note saying how much was left
    out."""
    out: list[str] = []
    size = 0
    for i, line in enumerate(lines):
        if size + len(line) + 1 > limit - 120:
            out.append(
                f"[cut: {len(lines) - i} more lines not shown to keep this answer under {limit} characters; "
                "narrow the window, lower the limit, or ask for less]"
            )
            break
        out.append(line)
        size += len(line) + 1
    return "\n".join(out)
