"""Stand-in for the conformance copy of azureml-examples 4d_data_input (our own script, same arguments).

Lists the input folder and writes one file describing it to the output folder.
"""

import argparse
from pathlib import Path

parser = argparse.ArgumentParser()
parser.add_argument("--input_data", required=True)
parser.add_argument("--output_data", required=True)
parser.add_argument("--input_string", default="")
args = parser.parse_args()

print("input_string:", args.input_string)
files = sorted(p.name for p in Path(args.input_data).iterdir())
print("files in input_data:", files)
Path(args.output_data, "hello.txt").write_text(f"{args.input_string}: {', '.join(files)}\n")
