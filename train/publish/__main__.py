"""`python -m train.publish`: see `train.publish.hub.main`."""

import sys

from train.publish.hub import main

if __name__ == "__main__":
    sys.exit(main())
