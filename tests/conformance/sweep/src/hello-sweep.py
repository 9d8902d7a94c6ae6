"""A sweep trial: prints its arguments and logs ``random_metric`` on the job's MLflow run."""

import argparse
import random

import mlflow

parser = argparse.ArgumentParser()
parser.add_argument("--A", type=float)
parser.add_argument("--B", type=str)
parser.add_argument("--C", type=float)
args = parser.parse_args()
print(f"A={args.A} B={args.B} C={args.C}")
mlflow.log_metric("random_metric", random.random() * args.C)
