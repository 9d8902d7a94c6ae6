"""The mitigated model as an MLflow pyfunc (``mlflow.pyfunc.load_model(uri).predict(df)``).

The input frame must hold the model's features and the sensitive feature columns. Loading it
needs openaml importable (the default environment of every job and deployment here has it).
"""

from __future__ import annotations

from typing import Any

import mlflow.pyfunc
import pandas as pd

__all__ = ["MitigatedPyfunc"]


class MitigatedPyfunc(mlflow.pyfunc.PythonModel):  # type: ignore[misc,name-defined]
    def __init__(self, mitigated: Any) -> None:
        self.mitigated = mitigated

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> Any:
        return self.mitigated.predict(model_input)
