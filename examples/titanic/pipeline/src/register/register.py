"""Registration step of the train-and-evaluate pipeline (the book's chapter 9): register if better.

Reads the evaluation's decision; when the new model is better, logs it to this step's MLflow run
and registers it as a new version of ``--registered_model_name``; otherwise says why not and
registers nothing.

Usage (what components/register.yml runs)::

    python register.py --model <MLflow model dir> --evaluation <decision JSON> --registered_model_name titanic-model
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import mlflow


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--evaluation", required=True)
    parser.add_argument("--registered_model_name", required=True)
    args = parser.parse_args()

    decision = json.loads(Path(args.evaluation).read_text())
    if not decision["better"]:
        mlflow.set_tag("registered", "false")
        print(f"not registered: accuracy {decision['new']:.4f} is not higher than {decision['registered']:.4f} "
              f"({args.registered_model_name} version {decision['registered_version']})")
        return
    mlflow.log_artifacts(args.model, artifact_path="model")
    version = mlflow.register_model(f"runs:/{mlflow.active_run().info.run_id}/model", args.registered_model_name)
    mlflow.set_tag("registered", version.version)
    print(f"registered {args.registered_model_name} version {version.version} (accuracy {decision['new']:.4f})")


if __name__ == "__main__":
    main()
