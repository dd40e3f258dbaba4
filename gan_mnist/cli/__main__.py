"""`python -m gan_mnist.cli` is the same as the `gan-mnist` command (and `python -m
gan_mnist`)."""

import sys

from gan_mnist.cli import main

sys.exit(main())
