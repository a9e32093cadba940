"""`attn` needs jax, flax and numpy only: the experiments' libraries are an extra."""

import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
BLOCKED = ("matplotlib", "PIL", "optax", "ml_collections", "tensorflow_datasets", "grain", "orbax")

PROGRAM = f"""
import importlib, pkgutil, sys

class Blocked:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {BLOCKED!r}:
            raise ImportError(f"{{name}} is blocked")
        return None

sys.meta_path.insert(0, Blocked())
import attn
for module in pkgutil.iter_modules(attn.__path__):
    importlib.import_module(f"attn.{{module.name}}")
from attn import viz
import numpy as np
try:
    viz.attention_heatmap(np.eye(2), column_labels=["a", "b"], row_labels=["c", "d"])
except ImportError as error:
    print("viz:", error)
print("ok", sorted(name for name in sys.modules if name.split(".")[0] in {BLOCKED!r}))
"""


def test_attn_imports_without_the_experiments_libraries():
    result = subprocess.run(
        [sys.executable, "-c", PROGRAM], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    assert lines[-1] == "ok []"
    assert "pip install attn[experiments]" in lines[-2]
