from openaml.cli import main

main()
