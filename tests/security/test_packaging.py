"""S6: no `.pth` files and no global install hooks — obsdash's injection lives only on the PYTHONPATH of a run
under `obsdash wrap`.

The wheel is built from this tree and read: no `.pth`, no top-level sitecustomize/usercustomize, no entry point
but the `obsdash` console script (an `opentelemetry_instrumentor`, `opentelemetry_distro` or
`opentelemetry_configurator` entry point would have `opentelemetry-instrument` load obsdash into unrelated apps).
The one sitecustomize.py sits alone in obsdash_instrumenters/_sitecustomize/, and `obsdash wrap` puts that folder,
and only it, in front of the user's PYTHONPATH. A plain `python` where obsdash is installed imports none of it.
"""

from __future__ import annotations

import configparser
import os
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO, child_env, run, wrapped

ALLOWED_TOP_LEVEL = {"obsdash", "obsdash_instrumenters"}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    out = tmp_path_factory.mktemp("wheel")
    cmd = [sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "-w", str(out), "-q"]
    result = run([*cmd, "--no-build-isolation"], timeout=300)
    if result.returncode != 0:  # hatchling missing from this venv: let pip fetch it
        result = run(cmd, timeout=300)
    assert result.returncode == 0, result.stderr
    (built,) = out.glob("obsdash-*.whl")
    return zipfile.ZipFile(built)


def test_wheel_has_no_pth_and_no_global_hooks(wheel: zipfile.ZipFile) -> None:
    names = wheel.namelist()
    assert not [n for n in names if n.endswith(".pth")]
    top_level = {n.split("/", 1)[0] for n in names if not n.split("/", 1)[0].endswith(".dist-info")}
    assert top_level == ALLOWED_TOP_LEVEL, top_level  # no sitecustomize.py / usercustomize.py / other module
    customize = [n for n in names if n.rsplit("/", 1)[-1] in ("sitecustomize.py", "usercustomize.py")]
    assert customize == ["obsdash_instrumenters/_sitecustomize/sitecustomize.py"], customize
    beside = [n for n in names if n.startswith("obsdash_instrumenters/_sitecustomize/")]
    assert beside == customize, beside  # anything else there would shadow the app's own modules
    print(f"\nS6: {len(names)} files in the wheel checked")


def test_the_only_entry_point_is_the_console_script(wheel: zipfile.ZipFile) -> None:
    (path,) = [n for n in wheel.namelist() if n.endswith(".dist-info/entry_points.txt")]
    entry_points = configparser.ConfigParser()
    entry_points.read_string(wheel.read(path).decode())
    found = {section: dict(entry_points[section]) for section in entry_points.sections()}
    assert found == {"console_scripts": {"obsdash": "obsdash.cli:main"}}, found


def test_wrap_adds_only_the_sitecustomize_folder_to_pythonpath(data_dir: Path, tmp_path: Path) -> None:
    show = "import os; print(os.environ['PYTHONPATH'])"
    env = child_env(PYTHONPATH=str(tmp_path / "users-own"))
    result = run(wrapped(data_dir, sys.executable, "-c", show), env=env)
    assert result.returncode == 0, result.stderr
    injected, *rest = result.stdout.strip().split(os.pathsep)
    assert rest == [str(tmp_path / "users-own")]
    assert Path(injected).name == "_sitecustomize"
    assert sorted(p.name for p in Path(injected).iterdir() if p.name != "__pycache__") == ["sitecustomize.py"]


def test_plain_python_does_not_load_obsdash() -> None:
    """Installed but not wrapped: nothing of obsdash (or OpenTelemetry, which it would bring) is imported."""
    env = {k: v for k, v in child_env().items() if k != "PYTHONPATH"}
    show = "import sys; print(sorted(m for m in sys.modules if m.split('.')[0] in {'obsdash', 'obsdash_instrumenters', 'opentelemetry', 'sitecustomize', 'usercustomize'}))"
    result = run([sys.executable, "-c", show], env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]", result.stdout
    # and the installed obsdash is really there to be found (else the check above proves nothing)
    found = run(
        [
            sys.executable,
            "-c",
            "import importlib.util as u; print(u.find_spec('obsdash_instrumenters') is not None)",
        ],
        env=env,
    )
    assert found.stdout.strip() == "True", found.stderr
