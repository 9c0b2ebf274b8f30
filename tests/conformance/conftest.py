"""The example plugin, importable from its source tree: the broken gateways are built on it.

CI installs it only for `.ci/conformance.sh`, as an outsider would; the project's own tests use the
source directly, so they neither need nor see an installed copy.
"""

import sys

from tests.conformance.suite_runs import EXAMPLE

if str(EXAMPLE / "src") not in sys.path:
    sys.path.insert(0, str(EXAMPLE / "src"))
