"""``python -m tandem.worker``: the entry point the server starts.

Kept to a bare call into ``main`` so that nothing is imported before
``main`` has set up the standard streams.
"""

import sys

from tandem.worker.main import main

sys.exit(main())
