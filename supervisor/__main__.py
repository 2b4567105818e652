"""`python -m supervisor` is `supervisorctl`."""

import sys

from supervisor.cli import main

sys.exit(main())
