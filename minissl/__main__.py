"""``python -m minissl``: runs :func:`minissl.cli.main` on the command line."""

import sys

from minissl.cli import main

sys.exit(main())
