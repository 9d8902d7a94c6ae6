"""The parallel job's entry script (shipped into the job's code snapshot as ``_openaml_parallel_driver.py``,
beside the engine's package ``_openaml_parallel/``; :mod:`openaml.parallel._openaml_parallel` says
what the engine does). It runs on the job's Python (3.7 or later), standard library only."""

import os
import sys

if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # the package beside this file
    from _openaml_parallel.driver import main

    sys.exit(main(sys.argv[1:]))
