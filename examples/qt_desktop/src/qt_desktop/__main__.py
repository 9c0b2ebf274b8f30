"""`python -m qt_desktop`: the same as the `qt-desktop` command."""

import sys

from qt_desktop._app import main

sys.exit(main())
