"""A script's report: printed, and written to a JSON file when one is named (docs/*.json)."""

from __future__ import annotations

import json
from pathlib import Path


def publish(report: dict, path: Path | None) -> None:
    """Print ``report`` as indented JSON, and write it to ``path`` too when given."""
    text = json.dumps(report, indent=2)
    print(text)
    if path:
        path.write_text(text + "\n")
