"""Ours: write the sales table as one CSV per partition key value, plus an MLTable over them."""

import argparse
import os

import pandas as pd

parser = argparse.ArgumentParser()
parser.add_argument("--data_source")
parser.add_argument("--partition_keys")
parser.add_argument("--tabular_output_data")
args = parser.parse_args()

df = pd.read_csv(args.data_source)
keys = args.partition_keys.split(",")
for values, part in df.groupby(keys):
    name = "_".join(str(v) for v in (values if isinstance(values, tuple) else (values,)))
    part.to_csv(os.path.join(args.tabular_output_data, f"{name}.csv"), index=False)
with open(os.path.join(args.tabular_output_data, "MLTable"), "w") as fh:
    fh.write("paths:\n  - pattern: ./*.csv\ntransformations:\n  - read_delimited:\n      delimiter: ','\n"
             "      header: all_files_same_headers\n      encoding: utf8\n")
print(f"{df.groupby(keys).ngroups} partitions of {len(df)} rows")
