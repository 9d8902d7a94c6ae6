"""Stand-in comparison for the conformance copy of pipeline_with_train_eval_pipeline_component (our own script).

Copies the model and evaluation result with the higher accuracy to --best_model and --best_result.
"""

import argparse
import shutil
from pathlib import Path

parser = argparse.ArgumentParser("compare2")
for name in ("model1", "eval_result1", "model2", "eval_result2", "best_model", "best_result"):
    parser.add_argument(f"--{name}", required=True)
args = parser.parse_args()


def accuracy(folder: str) -> float:
    return float(Path(folder, "eval_result.txt").read_text().strip().split("=")[1])


a1, a2 = accuracy(args.eval_result1), accuracy(args.eval_result2)
model, result = (args.model1, args.eval_result1) if a1 >= a2 else (args.model2, args.eval_result2)
print(f"model1 accuracy {a1}, model2 accuracy {a2}: best is {'model1' if a1 >= a2 else 'model2'}")
shutil.copytree(model, args.best_model, dirs_exist_ok=True)
shutil.copytree(result, args.best_result, dirs_exist_ok=True)
