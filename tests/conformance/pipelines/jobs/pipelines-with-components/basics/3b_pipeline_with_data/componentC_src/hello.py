"""Stand-in for the conformance copy of azureml-examples 3b_pipeline_with_data componentC (our own script, same arguments).

Lists the input folder and writes one file describing it to the output folder.
"""

import argparse
from pathlib import Path

parser = argparse.ArgumentParser()
parser.add_argument("--componentC_input", required=True)
parser.add_argument("--componentC_output", required=True)
args = parser.parse_args()

src, out = Path(args.componentC_input), Path(args.componentC_output)
files = sorted(p.name for p in src.iterdir())
print("I am componentC; input files:", files)
for name in files:  # pass the data on, plus a line saying this step saw it
    (out / name).write_bytes((src / name).read_bytes())
(out / "componentC.txt").write_text(f"componentC saw {', '.join(files)}\n")
