import sys

from openaml.runner._main import main

sys.exit(main(sys.argv[1:]))
