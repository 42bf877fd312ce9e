"""`python -m train.backbones`: see `train.backbones.bundled.main`."""

import sys

from train.backbones.bundled import main

if __name__ == "__main__":
    sys.exit(main())
