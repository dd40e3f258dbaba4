"""`python -m gan_mnist` is the same as the `gan-mnist` command."""

import sys

from gan_mnist.cli import main

sys.exit(main())
