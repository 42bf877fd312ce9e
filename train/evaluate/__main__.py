"""`python -m train.evaluate`: see `train.evaluate.evaluation.main`."""

import sys

from train.evaluate.evaluation import main

if __name__ == "__main__":
    sys.exit(main())
