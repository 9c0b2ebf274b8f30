"""`python -m broker_plugins`: the same as the `brokerctl` command."""

import sys

from broker_plugins.cli import main

if __name__ == "__main__":
    sys.exit(main())
