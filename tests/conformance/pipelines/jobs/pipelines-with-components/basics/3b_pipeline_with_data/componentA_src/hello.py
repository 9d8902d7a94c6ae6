"""Stand-in for the conformance copy of azureml-examples 3b_pipeline_with_data componentA (our own script, same arguments).

Lists the input folder and writes one file describing it to the output folder.
"""

import argparse
from pathlib import Path

parser = argparse.ArgumentParser()
parser.add_argument("--componentA_input", required=True)
parser.add_argument("--componentA_output", required=True)
args = parser.parse_args()

src, out = Path(args.componentA_input), Path(args.componentA_output)
files = sorted(p.name for p in src.iterdir())
print("I am componentA; input files:", files)
for name in files:  # pass the data on, plus a line saying this step saw it
    (out / name).write_bytes((src / name).read_bytes())
(out / "componentA.txt").write_text(f"componentA saw {', '.join(files)}\n")
