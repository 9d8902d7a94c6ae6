"""An MLflow models-from-code pyfunc with typed columns (int32 n, datetime when, optional string tag)."""
import mlflow
import pandas as pd
from mlflow.pyfunc import PythonModel


class Typed(PythonModel):
    def predict(self, context, model_input, params=None):
        assert str(model_input["n"].dtype) == "int32", model_input.dtypes
        tag = model_input["tag"] if "tag" in model_input else pd.Series([None] * len(model_input))
        return pd.DataFrame({"n2": model_input["n"].astype("int64") * 2, "day": model_input["when"].dt.day,
                             "tag": tag.fillna("NONE")})


mlflow.models.set_model(Typed())
