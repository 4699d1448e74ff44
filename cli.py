"""Run the dataengine command-line app from a checkout: `python cli.py --help`."""

from dataengine.cli.app import main

if __name__ == "__main__":
    main()
