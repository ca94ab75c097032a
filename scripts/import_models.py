"""Put the person detector and the ReID embedder into the BentoML model store.

The same as ``reid models import``; see ``--help``.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reid.importer import main  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(main())
