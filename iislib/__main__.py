import sys

from iislib.cli import main

sys.exit(main())
