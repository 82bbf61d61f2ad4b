"""``python -m cogment_gym.cli``: the same as the ``cogment-gym`` command."""

import sys

from cogment_gym.cli import main

sys.exit(main())
