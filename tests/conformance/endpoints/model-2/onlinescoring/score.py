"""Scoring script of model-2 (stands for the public sample's): inference-schema decorators parse the input."""
import logging
import os

import joblib
import numpy as np
from inference_schema.parameter_types.numpy_parameter_type import NumpyParameterType
from inference_schema.parameter_types.standard_py_parameter_type import StandardPythonParameterType
from inference_schema.schema_decorators import input_schema, output_schema

model = None


def init():
    global model
    model = joblib.load(os.path.join(os.environ["AZUREML_MODEL_DIR"], "model", "sklearn_regression_model.pkl"))
    logging.info("model-2 loaded")


@input_schema(param_name="data", param_type=NumpyParameterType(np.array([[0.0] * 10])))
@output_schema(output_type=StandardPythonParameterType({"output": [0.0, 0.0]}))
def run(data):
    return {"output": model.predict(data).tolist()}
