import sys

from minissl.cli import main

sys.exit(main())
