"""`python -m tinygrad_rnn` and the `tinygrad-rnn` console script."""
import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
