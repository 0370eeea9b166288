"""obsdash's injection point: start the in-app bootstrap, then run the user's own sitecustomize, if any.

`obsdash wrap` puts only this folder first on PYTHONPATH, so nothing else here can shadow the app's modules.
"""

import os
import sys


def _start_obsdash() -> None:
    try:
        from obsdash_instrumenters import bootstrap

        bootstrap.start()
    except BaseException:
        if os.environ.get("OBSDASH_STRICT") == "1":
            raise


def _run_users_sitecustomize() -> None:
    """Import the next `sitecustomize` on sys.path, as Python would have without us."""
    here = os.path.dirname(os.path.abspath(__file__))
    ours = sys.modules.pop("sitecustomize", None)
    saved_path = list(sys.path)
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]
    try:
        import sitecustomize  # type: ignore[import-not-found]  # noqa: F401 - the user's, further down the path
    except ImportError as exc:
        if exc.name != "sitecustomize":
            raise
    finally:
        sys.path[:] = saved_path
        if ours is not None and "sitecustomize" not in sys.modules:
            sys.modules["sitecustomize"] = ours


_start_obsdash()
_run_users_sitecustomize()
