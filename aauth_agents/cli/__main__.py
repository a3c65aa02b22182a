"""``python -m aauth_agents.cli``: the ``aauth-agents`` command."""

import sys

from . import main

sys.exit(main())
