import sys

from iislib.training.train import main

sys.exit(main())
