"""Stand-in evaluator for the conformance copy of 1a_e2e_local_components (our own script, same arguments)."""

import argparse
from pathlib import Path

parser = argparse.ArgumentParser("eval")
parser.add_argument("--scoring_result", required=True)
parser.add_argument("--eval_output", required=True)
args = parser.parse_args()

scored = Path(args.scoring_result, "score.txt").read_text().strip()
print("evaluating:", scored)
Path(args.eval_output, "eval_result.txt").write_text(f"evaluated: {scored}\n")
