"""The retention policy: how much telemetry a data dir keeps (`--max-age`, `--max-size`), parsed, shown and saved.

The policy lives in the store (`obsdash_meta` keys `retention.max_age_s`, `retention.max_size`; `none` for no
limit), so whichever process hosts the hub next applies it. A command given `--max-age`/`--max-size` asks for it
with `request()`; the first store the process opens saves it (the hub it starts, or the running hub it joins).
Standard library only: the CLI imports this to check the flags.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

DEFAULT_MAX_AGE_S: float | None = None
DEFAULT_MAX_SIZE: int | None = 2_000_000_000
"""2 GB: about 10M spans of the sample shop with their logs and metrics in DuckDB (179 MB per 1M, bench.synth),
the largest store the dashboard is held to (P6/P7), while a store that silently fills a laptop's disk is a bug.
No age limit by default: a laptop's runs are often days apart, and the size cap alone bounds the disk."""
MIN_SIZE = 16_000_000
"""DuckDB stores in 256 KB blocks, at least one per table, and rewrites a changed row group (122,880 rows) into new
blocks before it frees the old: a store with a little of everything takes ~5 MB on disk, and under an 8 MB cap the
sample shop kept about 6 s of its telemetry (docs/architecture.md, "Retention")."""
META_KEYS = {"max_age_s": "retention.max_age_s", "max_size": "retention.max_size"}


# -- the policy --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Policy:
    """How much to keep; None means no limit."""

    max_age_s: float | None = DEFAULT_MAX_AGE_S
    max_size: int | None = DEFAULT_MAX_SIZE

    def changed(self, changes: dict[str, Any]) -> Policy:
        """This policy with the limits in `changes` (keys `max_age_s`, `max_size`) replaced."""
        age = changes.get("max_age_s", self.max_age_s)
        size = changes.get("max_size", self.max_size)
        return Policy(None if age is None else float(age), None if size is None else int(size))


_AGE = re.compile(
    r"(\d+(?:\.\d+)?)\s*(s|sec|secs|m|min|mins|h|hr|hrs|d|day|days|w|week|weeks)", re.IGNORECASE
)
_AGE_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*(b|kb?|mb?|gb?|tb?|kib|mib|gib|tib)", re.IGNORECASE)
_SIZE_UNITS = {"b": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}
_NO_LIMIT = ("none", "off", "unlimited")


def parse_age(text: str) -> float | None:
    """`90m`, `24h`, `7d`, `2w` → seconds; `none` → None. ValueError saying what is expected."""
    value = text.strip()
    if value.lower() in _NO_LIMIT:
        return None
    match = _AGE.fullmatch(value)
    if not match:
        raise ValueError(f"not an age: {text!r} (say 90m, 24h or 7d; none for no limit)")
    seconds = float(match[1]) * _AGE_UNITS[match[2][0].lower()]
    if seconds < 60:
        raise ValueError(f"an age limit must be at least 1m, not {text!r}")
    return seconds


def parse_size(text: str) -> int | None:
    """`500MB`, `2GB`, `1.5G`, `512MiB` → bytes (kB/MB/GB are powers of 1000, KiB/MiB/GiB of 1024); `none` → None."""
    value = text.strip()
    if value.lower() in _NO_LIMIT:
        return None
    match = _SIZE.fullmatch(value)
    if not match:
        raise ValueError(f"not a size: {text!r} (say 500MB or 2GB; none for no limit)")
    unit = match[2].lower()
    scale = 1024 ** ("kmgt".index(unit[0]) + 1) if unit.endswith("ib") else _SIZE_UNITS[unit[0]]
    size = int(float(match[1]) * scale)
    if size < MIN_SIZE:
        raise ValueError(
            f"a size cap must be at least {format_size(MIN_SIZE)} (DuckDB's own overhead is ~5 MB)"
        )
    return size


def format_age(seconds: float) -> str:
    """Seconds as the largest whole unit: 86400 → `1d`, 5400 → `90m`."""
    for unit, scale in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= scale and seconds % scale == 0:
            return f"{int(seconds // scale)}{unit}"
    return f"{seconds / 3600:.3g}h" if seconds >= 3600 else f"{seconds / 60:.3g}m"


def format_size(nbytes: float) -> str:
    """Bytes in decimal units, three significant digits at most: `2 GB`, `312 MB`, `3.1 MB`."""
    value = float(nbytes)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 999.5 or unit == "GB":
            text = f"{value:.3g}" if unit != "B" else f"{value:.0f}"
            return f"{text} {unit}"
        value /= 1000
    return f"{nbytes:.0f} B"


def describe(status: dict[str, Any]) -> str:
    """`keeping 24h / 500 MB, 312 MB used` (+ why the data dir is over its cap, when it is)."""
    age, size = status.get("max_age_s"), status.get("max_size")
    if age and size:
        kept = f"{format_age(age)} / {format_size(size)}"
    elif size:
        kept = f"up to {format_size(size)}"
    elif age:
        kept = f"{format_age(age)} (no size cap)"
    else:
        kept = "everything (no age or size limit)"
    line = f"keeping {kept}, {format_size(status.get('used', 0))} used"
    return line + (f" — {status['note']}" if status.get("note") else "")


# -- a policy given on this command line -------------------------------------------------------------------------
_requested: dict[str, Any] = {}


def request(changes: dict[str, Any]) -> None:
    """Limits given on the command line: the first store this process opens saves them (`take_request`)."""
    _requested.clear()
    _requested.update(changes)


def take_request() -> dict[str, Any]:
    """The limits asked for on the command line and not saved yet (once)."""
    changes = dict(_requested)
    _requested.clear()
    return changes


def load_policy(conn: Any) -> Policy:
    """The policy saved in the store, defaults for what is not."""
    rows = dict(
        conn.execute(
            "SELECT key, value FROM obsdash_meta WHERE key IN (?, ?)", list(META_KEYS.values())
        ).fetchall()
    )
    policy = Policy()
    for field_name, key in META_KEYS.items():
        if key in rows:
            value = rows[key]
            policy = policy.changed({field_name: None if value == "none" else float(value)})
    return policy


def save_policy(conn: Any, policy: Policy) -> None:
    """Write the policy into `obsdash_meta` (under the hub's write lock)."""
    for field_name, key in META_KEYS.items():
        value = getattr(policy, field_name)
        conn.execute(
            "INSERT OR REPLACE INTO obsdash_meta VALUES (?, ?)",
            [key, "none" if value is None else str(value)],
        )
