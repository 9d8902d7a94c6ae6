"""Read the iris CSV named by --iris-csv, show its first rows and keep a copy in ./outputs."""

import argparse
from pathlib import Path

import pandas as pd


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--iris-csv", type=str, required=True)
    args = parser.parse_args()

    table = pd.read_csv(args.iris_csv)
    print(table.head())

    out = Path("outputs")
    out.mkdir(exist_ok=True)
    table.to_csv(out / "iris.csv", index=False)


if __name__ == "__main__":
    main()
