"""`python -m tinytorch.tito` is the same as the `tito` console script."""
import sys

from .cli import main

sys.exit(main())
