"""Stand-in for the conformance copy of azureml-examples 3b_pipeline_with_data componentB (our own script, same arguments).

Lists the input folder and writes one file describing it to the output folder.
"""

import argparse
from pathlib import Path

parser = argparse.ArgumentParser()
parser.add_argument("--componentB_input", required=True)
parser.add_argument("--componentB_output", required=True)
args = parser.parse_args()

src, out = Path(args.componentB_input), Path(args.componentB_output)
files = sorted(p.name for p in src.iterdir())
print("I am componentB; input files:", files)
for name in files:  # pass the data on, plus a line saying this step saw it
    (out / name).write_bytes((src / name).read_bytes())
(out / "componentB.txt").write_text(f"componentB saw {', '.join(files)}\n")
