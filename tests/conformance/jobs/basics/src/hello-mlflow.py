"""Log a parameter, a metric and a file to MLflow from inside a job.

No mlflow.start_run(): the job already is an MLflow run (MLFLOW_TRACKING_URI and MLFLOW_RUN_ID are
set by the platform), so these calls land on it.
"""

import random
from pathlib import Path

import mlflow


def main() -> None:
    mlflow.log_param("hello_param", "world")
    mlflow.log_metric("hello_metric", random.random())
    note = Path("helloworld.txt")
    note.write_text("hello world\n")
    mlflow.log_artifact(str(note))


if __name__ == "__main__":
    main()
