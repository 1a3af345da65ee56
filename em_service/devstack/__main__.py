"""Entry point: ``python -m em_service.devstack up|down|status|topics``."""

import sys

from em_service.devstack.cli import main

sys.exit(main())
