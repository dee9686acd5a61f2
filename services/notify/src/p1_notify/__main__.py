import sys

from p1_notify.cli import main

sys.exit(main())
