"""Stand-in trainer for the conformance copy of pipeline_with_train_eval_pipeline_component (our own script).

Same arguments as the public component; writes model.txt with the learning rate to --model_output.
"""

import argparse
from pathlib import Path

parser = argparse.ArgumentParser("train")
parser.add_argument("--training_data", required=True)
parser.add_argument("--max_epochs", type=int, required=True)
parser.add_argument("--learning_rate", type=float, required=True)
parser.add_argument("--learning_rate_schedule", required=True)
parser.add_argument("--model_output", required=True)
args = parser.parse_args()

files = sorted(p.name for p in Path(args.training_data).iterdir())
print(f"training on {files}: epochs={args.max_epochs} lr={args.learning_rate} ({args.learning_rate_schedule})")
Path(args.model_output, "model.txt").write_text(f"lr={args.learning_rate} epochs={args.max_epochs}\n")
