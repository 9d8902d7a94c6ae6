"""Stand-in scorer for the conformance copy of pipeline_with_train_eval_pipeline_component (our own script)."""

import argparse
from pathlib import Path

parser = argparse.ArgumentParser("score")
parser.add_argument("--model_input", required=True)
parser.add_argument("--test_data", required=True)
parser.add_argument("--score_output", required=True)
args = parser.parse_args()

model = Path(args.model_input, "model.txt").read_text().strip()
print("scoring with", model)
Path(args.score_output, "score.txt").write_text(model + "\n")
