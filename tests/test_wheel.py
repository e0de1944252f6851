"""The built wheel installs into a fresh virtual environment and its commands run.

A plain ``pip install`` of the wheel, with the core dependencies only (no
torch, no matplotlib), as a user would get from ``pip install .``: the
``weightstats`` console script and ``python -m weightstats`` work, the
built-in data and the license files are packaged, and optional features say
what to install. pip reuses its local cache, so this costs about half a minute
of CPU, most of it unpacking numpy, scipy, pandas, numba and cvxpy.
"""

import json
import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (ROOT / "pyproject.toml").exists(), reason="needs a source checkout"),
]


def _run(*args, **kwargs):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MPLBACKEND")}
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, env=env,
                          timeout=600, **kwargs)


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """A throwaway virtual environment with the wheel installed; its bin folder."""
    tmp = tmp_path_factory.mktemp("wheel")
    built = _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w",
                 tmp / "dist", ROOT)
    assert built.returncode == 0, built.stderr
    (wheel,) = (tmp / "dist").glob("weightstats-*.whl")
    venv.create(tmp / "venv", with_pip=True)
    bin_dir = tmp / "venv" / ("Scripts" if os.name == "nt" else "bin")
    done = _run(bin_dir / "python", "-m", "pip", "install", "--quiet", wheel, cwd=tmp)
    assert done.returncode == 0, done.stderr
    return bin_dir


def test_console_script_runs_the_demo_as_json(installed, tmp_path):
    # entropy balancing keeps this quick; the default run is the slow acceptance test
    proc = _run(installed / "weightstats", "balance", "--method", "entropy", "--format", "json",
                cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["data"]["treated"] == 185 and doc["data"]["control"] == 15992
    assert doc["benchmark"]["experimental_att"] == pytest.approx(1794.34)
    assert doc["converged"] is True


def test_module_entry_point_and_optional_extras(installed, tmp_path):
    python = installed / "python"
    help_text = _run(python, "-m", "weightstats", "--help", cwd=tmp_path)
    assert help_text.returncode == 0 and "usage: weightstats" in help_text.stdout
    # a plain install has neither torch nor matplotlib; --plot says what to install
    absent = _run(python, "-c", "import importlib.util as u; "
                  "print(u.find_spec('torch'), u.find_spec('matplotlib'))", cwd=tmp_path)
    assert absent.stdout.split() == ["None", "None"]
    plot = _run(installed / "weightstats", "balance", "--plot", tmp_path / "love.png",
                cwd=tmp_path)
    assert plot.returncode == 2 and "Traceback" not in plot.stderr
    assert "--plot needs matplotlib" in plot.stderr


def test_wheel_carries_the_license_notices(installed):
    site = next((installed.parent / "lib").glob("python*/site-packages"))
    (dist_info,) = site.glob("weightstats-*.dist-info")
    licenses = sorted(p.name for p in (dist_info / "licenses").rglob("*") if p.is_file())
    assert licenses == ["LICENSE", "LICENSE-causaldata.txt"]
    assert "Nick Huntington-Klein" in (site / "weightstats" / "datasets" / "data"
                                       / "LICENSE-causaldata.txt").read_text()
    assert "BSD 3-Clause" in (dist_info / "licenses" / "LICENSE").read_text()
