"""Package lists of the curated environments, as data.

Read from Azure's published definitions (Azure/azureml-assets,
``assets/training/general/environments/<name>/context/conda_dependencies.yaml`` and
``assets/inference/environments/<name>/context/conda_dependencies.yaml``), with these changes,
applied the same way to every entry (docs/guide/environments.md, "Curated environments"):

- ``azureml-core``, ``azureml-defaults``, ``azureml-telemetry`` (Azure ML SDK v1, need a workspace in
  Azure) are left out; ``azureml-mlflow`` becomes ``mlflow``: MLflow 3 (MLFLOW_3) on the Python 3.10
  images, as Azure's images resolve it today, else the MLflow 2 or 1 line that fits the image's Python.
  Curated environments save scikit-learn models with cloudpickle by default (``_curated_hook.py``),
  so the book's ``mlflow.sklearn.log_model(pipeline, ...)`` of a ColumnTransformer / OneHotEncoder
  pipeline saves and loads back (MLflow 3's skops default refuses it);
- the "azureml-automl-common-tools" block (py-spy, debugpy, ipykernel, tensorboard,
  torch-tb-profiler, py-cpuinfo) and ``scikit-learn-intelex`` are left out: debugging/profiling
  tools of Azure's images, large, and not used by training code; ``adlfs`` and ``distributed``
  (Azure storage / dask scheduler) likewise;
- in the tabular training lists (scikit-learn, LightGBM, Python 3.8 and later), ``azureml-core`` /
  ``azureml-defaults`` (Azure's data access of SDK v1) become ``mltable`` (the data access of SDK v2),
  so that a job reads its MLTable inputs with ``mltable.load(...)`` as Azure's examples do;
- in the Python 3.10 lists (``sklearn-1.5``, ``lightgbm-3.3``), ``numpy~=1.22.0`` becomes
  ``numpy~=1.26.4``, the last NumPy 1.x: the same 1.x ABI for the pinned pandas/scipy/scikit-learn, and
  it reads pickles written by NumPy 2 (1.22 fails with "No module named 'numpy._core'"), so a model
  trained with today's packages loads in a job or deployment on these environments;
- the conda pins (``pandas~=1.5.3``) are kept as pip specifiers; ``pip=..`` is dropped;
- ``{{latest-pypi-version}}`` is Azure's placeholder: such packages are unpinned here.

Each entry: (python ``X.Y`` of Azure's image, pip requirements).
"""

from __future__ import annotations

__all__ = ["CURATED_PACKAGES", "MLFLOW_3", "MLFLOW_2", "MLFLOW_1"]

# the MLflow 2 line (cloudpickle model format); resolves with numpy 1.22 on Python 3.8-3.11
MLFLOW_2 = "mlflow==2.17.2"
# the MLflow line Azure's Python 3.10 images resolve today (azureml-mlflow unpinned), with MLflow 2's
# cloudpickle default for scikit-learn models (environments/_curated_hook.py)
MLFLOW_3 = "mlflow==3.17.2"
# MLflow 1.x for the Python 3.7 images
MLFLOW_1 = "mlflow==1.30.1"

_TOOLS = ["psutil~=5.8.0", "matplotlib~=3.5.0", "tqdm~=4.66.3"]

CURATED_PACKAGES: dict[str, tuple[str, list[str]]] = {
    "sklearn-1.5": ("3.10", ["pandas~=1.5.3", "scipy~=1.10.0", "numpy~=1.26.4", "scikit-learn~=1.5.0",
                             "joblib~=1.2.0", *_TOOLS, MLFLOW_3, "mltable"]),
    "sklearn-1.1": ("3.9", ["pandas~=1.3.0", "scipy~=1.10.0", "numpy~=1.22.0", "scikit-learn~=1.1.0",
                            "joblib~=1.2.0", *_TOOLS, MLFLOW_2, "mltable"]),
    "sklearn-1.0": ("3.9", ["pandas~=1.3.0", "scipy~=1.10.0", "numpy~=1.22.0", "scikit-learn~=1.0.0",
                            "joblib~=1.2.0", *_TOOLS, MLFLOW_2, "mltable"]),
    "sklearn-0.24": ("3.7", ["pandas~=1.1.0", "scipy~=1.5.0", "numpy~=1.19.0", "scikit-learn~=0.24.0",
                             "joblib~=1.0.0", "matplotlib~=3.3.0", MLFLOW_1]),
    "lightgbm-3.3": ("3.10", ["pandas~=1.5.3", "scipy~=1.10.0", "numpy~=1.26.4", "scikit-learn~=1.5.1",
                              "xgboost~=1.7.6", "lightgbm>=4.6.0", *_TOOLS, MLFLOW_3, "mltable"]),
    "lightgbm-3.2": ("3.7", ["pandas~=1.1.0", "numpy~=1.19.0", "scikit-learn~=0.24.0", "lightgbm~=3.2.0",
                             MLFLOW_1]),
    "tensorflow-2.16": ("3.10", ["tensorflow~=2.16.1", "pandas~=1.5.3", *_TOOLS, MLFLOW_2]),
    "tensorflow-2.12": ("3.8", ["tensorflow~=2.12.0", "pandas~=1.5.3", *_TOOLS, MLFLOW_2]),
    "tensorflow-2.4": ("3.7", ["tensorflow~=2.4.0", MLFLOW_1]),
    "pytorch-1.10": ("3.8", ["torch~=1.10.0", "torchvision~=0.11.0", MLFLOW_2]),
    "acpt-pytorch-2.8": ("3.10", ["torch~=2.8.0", "torchvision", *_TOOLS, MLFLOW_2]),
    "acpt-pytorch-2.2": ("3.10", ["torch~=2.2.0", "torchvision", *_TOOLS, MLFLOW_2]),
    "acpt-pytorch-1.13": ("3.8", ["torch~=1.13.0", "torchvision", MLFLOW_2]),
    # inference images: Azure's score.py host, plus MLflow for the mlflow image
    "minimal-py39-inference": ("3.9", ["azureml-inference-server-http"]),
    "minimal-py38-inference": ("3.8", ["azureml-inference-server-http"]),
    "minimal-py311-inference": ("3.11", ["azureml-inference-server-http"]),
    "mlflow-py38-inference": ("3.8", ["azureml-inference-server-http", MLFLOW_2, "pandas", "pyarrow"]),
    "mlflow-py39-inference": ("3.9", ["azureml-inference-server-http", MLFLOW_2, "pandas", "pyarrow"]),
}
