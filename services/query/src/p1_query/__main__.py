import sys

from p1_query.cli import main

sys.exit(main())
