"""`python -m train.data`: see `train.data.records.main`."""

import sys

from train.data.records import main

if __name__ == "__main__":
    sys.exit(main())
