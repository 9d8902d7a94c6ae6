"""What curated environments add on top of their package lists: scikit-learn models saved with
cloudpickle by default.

Azure's curated images log the book's ``mlflow.sklearn.log_model(pipeline, ...)`` of a
ColumnTransformer / OneHotEncoder pipeline, and it loads back. MLflow 3's default format, skops,
refuses such a pipeline (``numpy.dtype`` is not a trusted type). The curated environments carry
MLflow 3 (what Azure's images resolve today) with MLflow 2's default format, cloudpickle: a small
import hook, installed as a ``.pth`` file in the environment's own site-packages, makes
``mlflow.sklearn``'s default serialization format cloudpickle. An explicit ``serialization_format=``
still wins. Environments built from the user's own files are left as MLflow makes them.

Azure's Responsible AI environments (``responsibleai-tabular`` ...) resolve to the default
environment (openaml's own packages, what the built-in RAI components run in); a job naming one
gets the same hook in its own layer (:func:`wants_curated_hooks`), so Azure's RAI samples'
``mlflow.sklearn.save_model(random_forest, ...)`` saves as on Azure's image. A job without
``environment:`` is left as MLflow makes it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["install_curated_hooks", "wants_curated_hooks", "HOOK_MODULE"]

HOOK_MODULE = "_openaml_curated_mlflow"

_SOURCE = '''"""openaml curated environment: mlflow.sklearn saves with cloudpickle unless told otherwise.

Imported at every interpreter start (a .pth line): it imports nothing at start (a finder needs no
importlib.abc base class); importlib.util only once mlflow.sklearn is imported."""
import sys


class _SklearnDefault:
    def find_spec(self, name, path=None, target=None):
        if name != "mlflow.sklearn":
            return None
        import importlib.util

        sys.meta_path.remove(self)
        try:
            spec = importlib.util.find_spec(name)
        finally:
            sys.meta_path.insert(0, self)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        run = spec.loader.exec_module

        def exec_module(module):
            run(module)
            fmt = getattr(module, "SERIALIZATION_FORMAT_CLOUDPICKLE", None)
            if fmt and hasattr(module, "_get_default_serialization_format"):
                module._get_default_serialization_format = lambda: fmt

        spec.loader.exec_module = exec_module
        return spec

    def invalidate_caches(self):
        pass


sys.meta_path.insert(0, _SklearnDefault())
'''


def install_curated_hooks(site_packages: str | Path) -> None:
    """Write the hook module and its ``.pth`` into ``site_packages`` (a curated environment's own)."""
    site = Path(site_packages)
    (site / f"{HOOK_MODULE}.py").write_text(_SOURCE, encoding="utf-8")
    (site / f"{HOOK_MODULE}.pth").write_text(f"import {HOOK_MODULE}\n", encoding="utf-8")


def wants_curated_hooks(env: dict[str, Any]) -> bool:
    """Whether a job's environment record (``EnvironmentService.resolve_for_job``) is a curated
    environment that runs on the default environment (Azure's RAI environments): its runner installs
    the hooks into the job's own layer. Never for a job without ``environment:``."""
    from openaml.environments._refs import is_rai_environment

    return env.get("kind", "base") == "base" and is_rai_environment(str(env.get("curated") or ""))
