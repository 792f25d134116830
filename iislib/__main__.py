import sys

from iislib.apps.cli import main

sys.exit(main())
