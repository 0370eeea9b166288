"""Run a callback right after the app imports a given module: how instrumentors load lazily.

Instrumenting on first import, instead of at start-up like `opentelemetry-instrument` (which imports flask and
requests even when the app never does), keeps `obsdash wrap python -c pass` near bare start-up (P1).
The loader of a watched module is wrapped only while it executes, then restored, so the module looks untouched.
"""

from __future__ import annotations

import sys

from obsdash_instrumenters.safety import internal_error

TYPE_CHECKING = False  # `typing` costs ~10 ms at start-up; mypy still reads the block below
if TYPE_CHECKING:
    from collections.abc import Callable
    from types import ModuleType
    from typing import Any

    Callback = Callable[[ModuleType], None]


class PostImportFinder:
    """A sys.meta_path finder that never finds anything itself; it only wraps the real loader of watched modules."""

    def __init__(self, after_each: Callback | None = None) -> None:
        self._callbacks: dict[str, list[Callback]] = {}
        self._after_each = after_each

    def watch(self, module_name: str, callback: Callback) -> None:
        """Call `callback(module)` once `module_name` is imported (at once if it already is)."""
        module = sys.modules.get(module_name)
        if module is not None:
            _call_safely(callback, module)
            return
        self._callbacks.setdefault(module_name, []).append(callback)

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        """Find the module with the other finders, then wrap its loader if someone waits for it."""
        if fullname not in self._callbacks:
            return None
        try:
            spec = _find_with_others(self, fullname, path, target)
            loader = getattr(spec, "loader", None)
            if spec is None or loader is None or not hasattr(loader, "exec_module"):
                return None
            callbacks = self._callbacks.pop(fullname)
            if self._after_each is not None:
                callbacks.append(self._after_each)
            spec.loader = _NotifyingLoader(loader, callbacks)
            return spec
        except BaseException as exc:
            internal_error("import_hook.find_spec", exc)
            return None

    def invalidate_caches(self) -> None:
        """Nothing cached here."""


def _find_with_others(me: PostImportFinder, fullname: str, path: Any, target: Any) -> Any:
    for finder in sys.meta_path:
        if finder is me:
            continue
        find_spec = getattr(finder, "find_spec", None)
        if find_spec is None:
            continue
        spec = find_spec(fullname, path, target)
        if spec is not None:
            return spec
    return None


class _NotifyingLoader:
    """Delegates to the real loader; after the module has executed, restores it and runs the callbacks."""

    def __init__(self, loader: Any, callbacks: list[Callback]) -> None:
        self._loader = loader
        self._callbacks = callbacks

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)

    def create_module(self, spec: Any) -> Any:
        create = getattr(self._loader, "create_module", None)
        return create(spec) if create is not None else None

    def exec_module(self, module: ModuleType) -> None:
        self._loader.exec_module(module)  # the app's own errors propagate untouched
        try:
            module.__loader__ = self._loader
            if module.__spec__ is not None:
                module.__spec__.loader = self._loader
        except BaseException as exc:
            internal_error("import_hook.restore", exc)
        for callback in self._callbacks:
            _call_safely(callback, module)


def _call_safely(callback: Callback, module: ModuleType) -> None:
    try:
        callback(module)
    except BaseException as exc:
        internal_error(f"import_hook.callback[{module.__name__}]", exc)
