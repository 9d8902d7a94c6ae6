"""Stand-in evaluator for the conformance copy of pipeline_with_train_eval_pipeline_component (our own script).

A made-up but deterministic metric: the closer the learning rate is to 0.05, the higher the accuracy.
"""

import argparse
from pathlib import Path

parser = argparse.ArgumentParser("eval")
parser.add_argument("--scoring_result", required=True)
parser.add_argument("--eval_output", required=True)
args = parser.parse_args()

fields = dict(kv.split("=") for kv in Path(args.scoring_result, "score.txt").read_text().split())
accuracy = round(1.0 - abs(float(fields["lr"]) - 0.05), 4)
print("accuracy", accuracy)
Path(args.eval_output, "eval_result.txt").write_text(f"accuracy={accuracy}\n")
