"""Stand-in scorer for the conformance copy of 1a_e2e_local_components (our own script, same arguments)."""

import argparse
from pathlib import Path

parser = argparse.ArgumentParser("score")
parser.add_argument("--model_input", required=True)
parser.add_argument("--test_data", required=True)
parser.add_argument("--score_output", required=True)
args = parser.parse_args()

model = Path(args.model_input, "model.txt").read_text().strip()
files = sorted(p.name for p in Path(args.test_data).iterdir())
print(f"scoring {files} with: {model}")
Path(args.score_output, "score.txt").write_text(f"scored {','.join(files)} with {model}\n")
