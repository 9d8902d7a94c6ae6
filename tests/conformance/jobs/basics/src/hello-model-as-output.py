"""Load the MLflow model given as --input_model and save it again under --custom_model_output/my_model."""

import argparse
import os

import mlflow.sklearn


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--input_model", type=str)
    parser.add_argument("--custom_model_output", type=str)
    args = parser.parse_args()

    model = mlflow.sklearn.load_model(args.input_model)
    mlflow.sklearn.save_model(model, os.path.join(args.custom_model_output, "my_model"))


if __name__ == "__main__":
    main()
