"""The scene benchmark: labelled scenes of several kinds, built from ``../shared``'s data.

Each kind is a list of folders of MOT-style sequences (``img1/``, ``gt/gt.txt``), compared
frame pair by frame pair end to end. A default is judged by its worst kind.

- ``street``: street surveillance, MOT17 (all sequences but the mall), real frame pairs.
- ``indoor``: indoor views from the side and from above: the two-camera hall (real, across
  cameras), MOT17-11 (a shopping mall, real frame pairs), and synthetic second views of the
  hall's frames (:mod:`reid.evaluation.synthetic`).
- ``crowded-frontal``: synthetic line-ups of MOT17's people, side by side and overlapping, cut
  off at the bottom edge, the second image their other frame (:mod:`reid.evaluation.lineups`).
- ``small-distant``: MOT17's frame pairs shrunk to 0.4 of their size (median person 65 px tall).

Any folder of MOT-style sequences, or of labelled photos to pair with synthetic views, can be
added as a kind of its own (``scripts/evaluate.py --kind NAME=DIR`` or ``NAME=views:DIR``).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from reid.evaluation.lineups import write_lineups
from reid.evaluation.synthetic import distant_copies, synthetic_pairs

KINDS = ("street", "indoor", "crowded-frontal", "small-distant")
MALL = "MOT17-11-FRCNN"
DISTANT_SCALE = 0.4
# Already small at 640 x 480: shrunk again its people would be a few pixels tall.
ALREADY_DISTANT = "MOT17-05-FRCNN"


def linked(sources: list[Path], target: Path) -> Path:
    """``target`` holding a link to each sequence folder of ``sources``."""
    target.mkdir(parents=True, exist_ok=True)
    for source in sources:
        (target / source.name).symlink_to(source.resolve(), target_is_directory=True)
    return target


def build_kinds(shared: Path, cache: Path) -> dict[str, list[Path]]:
    """The benchmark's kinds, each as folders of MOT-style sequences, written anew into ``cache``."""
    shutil.rmtree(cache, ignore_errors=True)
    mot17 = sorted(path for path in (shared / "data" / "mot17").iterdir() if (path / "gt" / "gt.txt").is_file())
    hall = shared / "data" / "two-camera-hall"
    distant_copies(shared / "data" / "mot17", cache / "small-distant", DISTANT_SCALE)
    shutil.rmtree(cache / "small-distant" / ALREADY_DISTANT)
    synthetic_pairs(hall, cache / "hall-views")
    write_lineups(shared / "data" / "mot17", cache / "lineups")
    return {
        "street": [linked([path for path in mot17 if path.name != MALL], cache / "street")],
        "indoor": [hall, linked([path for path in mot17 if path.name == MALL], cache / "mall"), cache / "hall-views"],
        "crowded-frontal": [cache / "lineups"],
        "small-distant": [cache / "small-distant"],
    }


def parse_kind(text: str, cache: Path) -> tuple[str, list[Path]]:
    """``NAME=DIR[,DIR...]`` (MOT-style sequences) or ``NAME=views:DIR`` (labelled photos, each
    paired with a synthetic second view written into ``cache``) as ``(name, folders)``."""
    name, _, where = text.partition("=")
    if where.startswith("views:"):
        return name, [_views(Path(where.removeprefix("views:")), cache / f"views-{name}")]
    return name, [Path(folder) for folder in where.split(",")]


def _views(source: Path, target: Path) -> Path:
    shutil.rmtree(target, ignore_errors=True)
    synthetic_pairs(source, target)
    return target
