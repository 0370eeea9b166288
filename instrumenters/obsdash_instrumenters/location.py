"""Where in the app's own code an exception happened: the basis of error fingerprints.

Given a formatted Python stack trace, pick the innermost frame that belongs to the app (not the standard
library, not an installed package), as `path:function`. Line numbers are left out on purpose so a fingerprint
survives edits above the failing line.
"""

from __future__ import annotations

import os

_FRAME_PATTERN = r'^\s*File "(?P<file>[^"]+)", line \d+, in (?P<func>.+?)\s*$'
_library_prefixes: tuple[str, ...] | None = None


def _libraries() -> tuple[str, ...]:
    global _library_prefixes
    if _library_prefixes is None:
        import sysconfig

        paths = sysconfig.get_paths()
        roots = {paths.get(key, "") for key in ("stdlib", "platstdlib", "purelib", "platlib")}
        _library_prefixes = tuple(os.path.realpath(p) + os.sep for p in roots if p)
    return _library_prefixes


def is_app_file(path: str) -> bool:
    """True for files of the app itself, False for the standard library and installed packages."""
    if path.startswith("<") or "site-packages" in path or "dist-packages" in path:
        return False
    real = os.path.realpath(path)
    return not real.startswith(_libraries())


def _short(path: str) -> str:
    cwd = os.getcwd() + os.sep
    return path[len(cwd) :] if path.startswith(cwd) else path


def app_location(stacktrace: str) -> str | None:
    """`file:function` of the innermost app frame, else of the innermost frame; None without frames."""
    import re

    frames = [
        (m.group("file"), m.group("func")) for m in re.finditer(_FRAME_PATTERN, stacktrace, re.MULTILINE)
    ]
    if not frames:
        return None
    for path, func in reversed(frames):
        if is_app_file(path):
            return f"{_short(path)}:{func}"
    path, func = frames[-1]
    return f"{_short(path)}:{func}"
