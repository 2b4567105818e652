"""`python -m supervisor` is `supervisorctl`."""

import sys

from supervisor.ctl.cli import main

sys.exit(main())
