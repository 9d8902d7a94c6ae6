"""Stand-in trainer for the conformance copy of 1a_e2e_local_components (our own script, same arguments).

Reads every file of --training_data, writes model.txt (the parameters and the rows seen) to --model_output.
"""

import argparse
from pathlib import Path

parser = argparse.ArgumentParser("train")
parser.add_argument("--training_data", required=True)
parser.add_argument("--max_epocs", type=int, required=True)
parser.add_argument("--learning_rate", type=float, required=True)
parser.add_argument("--learning_rate_schedule", required=True)
parser.add_argument("--model_output", required=True)
args = parser.parse_args()

rows = 0
for f in sorted(Path(args.training_data).iterdir()):
    n = len(f.read_text().splitlines()) - 1
    print(f"training file {f.name}: {n} rows")
    rows += n
model = (f"model epochs={args.max_epocs} lr={args.learning_rate} schedule={args.learning_rate_schedule} "
         f"rows={rows}\n")
Path(args.model_output, "model.txt").write_text(model)
print("trained:", model.strip())
