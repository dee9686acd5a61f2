import sys

from p1_ingest.cli import main

sys.exit(main())
