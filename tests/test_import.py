"""``import weightstats`` stays light: no torch, no matplotlib, no numba compilation."""

import json
import subprocess
import sys

HEAVY = ["torch", "matplotlib", "numba", "sklearn", "cvxpy", "statsmodels", "dask"]


def _run(code):
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_top_level_import_loads_no_heavy_dependency():
    loaded = _run(
        "import json, sys, weightstats; "
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    )
    assert loaded == []


def test_public_subpackages_import_without_torch_matplotlib_or_compiling():
    code = """
import importlib, json, sys
import weightstats
from weightstats.utils.discovery import public_modules
for name in public_modules():
    if not name.startswith("weightstats.nn"):
        importlib.import_module(name)
from weightstats._kernels import KernelVariants
compiled = []
for mod_name, mod in list(sys.modules.items()):
    if not mod_name.startswith("weightstats"):
        continue
    for attr, value in vars(mod).items():
        dispatchers = [value.serial, value.parallel] if isinstance(value, KernelVariants) else [value]
        for d in dispatchers:
            if getattr(d, "signatures", None):
                compiled.append(f"{mod_name}.{attr}")
print(json.dumps({"torch": "torch" in sys.modules, "matplotlib": "matplotlib" in sys.modules,
                  "compiled": sorted(set(compiled))}))
"""
    result = _run(code)
    assert result == {"torch": False, "matplotlib": False, "compiled": []}


def test_nn_without_torch_explains_how_to_install():
    code = """
import builtins, json
real_import = builtins.__import__
def fake_import(name, *args, **kwargs):
    if name.split(".")[0] in ("torch", "skorch"):
        raise ImportError("No module named " + name)
    return real_import(name, *args, **kwargs)
builtins.__import__ = fake_import
try:
    import weightstats.nn
    print(json.dumps("imported"))
except ImportError as exc:
    print(json.dumps(str(exc)))
"""
    assert "pip install weightstats[torch]" in _run(code)
