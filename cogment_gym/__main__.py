"""``python -m cogment_gym`` is the ``cogment-gym`` command."""

import sys

from cogment_gym.cli import main

sys.exit(main())
