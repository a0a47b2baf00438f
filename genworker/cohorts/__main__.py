import sys

from genworker.cohorts.cli import main

sys.exit(main())
