"""Bulk enrolment of many pictures into a service's gallery (``reid gallery enrol-folder``).

What to enrol comes from a folder, one folder per person (named as its label) with its pictures,
optionally in one folder per source (``DIR/<label>/<camera>/<picture>``); or from a CSV of
``image,bbox,label[,source]`` (paths relative to the CSV; rows of one label are one person,
rows without a label a person each). A person's first picture enrols it; the others are added
as its views.

Resumable: each picture's outcome is appended to a state file as it comes (JSON lines). A rerun
skips what was stored or refused and adds the rest to the persons already made. Each picture is
sent with an idempotency key made from its place and content, so that a picture stored just
before a crash (its line not yet written) is not stored twice on a rerun within a day.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from reid.schemas import GalleryEntry

if TYPE_CHECKING:
    from reid.clients.client import ReIDClient

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png"})
# Refusals of a picture itself (a bad image or box, too large, not one person): recorded and
# skipped. Any other (a wrong API key, a model mismatch) stops the run.
PICTURE_REFUSALS = frozenset({400, 413, 415, 422})
STATE_NAME = ".reid-enrolled.jsonl"


@dataclass(frozen=True)
class Picture:
    """One picture to store: ``item`` names it in the state file, ``person`` groups the
    pictures of one person."""

    item: str
    image: Path
    person: str
    label: str | None
    bbox: list[int] | None = None
    source: str | None = None


def folder_pictures(folder: Path) -> list[Picture]:
    """The pictures of ``folder/<label>/[<source>/]<picture>``, in name order."""
    pictures = []
    for person in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for path in sorted(person.rglob("*")):
            if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file():
                inner = path.relative_to(person).parts
                source = inner[0] if len(inner) > 1 else None
                item = path.relative_to(folder).as_posix()
                pictures.append(Picture(item, path, person.name, person.name, None, source))
    return pictures


def csv_pictures(table: Path) -> list[Picture]:
    """The rows of a CSV with the columns ``image``, ``bbox`` (``x1,y1,x2,y2`` or empty),
    ``label`` and optionally ``source``; ValueError naming the row for a bad one."""
    pictures = []
    with table.open(newline="", encoding="utf-8") as file:
        rows = csv.DictReader(file)
        missing = {"image", "bbox", "label"} - set(rows.fieldnames or ())
        if missing:
            raise ValueError(
                f"{table}: the CSV needs the columns image, bbox, label (missing: {', '.join(sorted(missing))})"
            )
        for number, row in enumerate(rows, start=2):
            try:
                bbox = [int(v) for v in row["bbox"].split(",")] if row["bbox"].strip() else None
            except ValueError:
                raise ValueError(f"{table}, line {number}: bbox must be x1,y1,x2,y2 in integer pixels") from None
            label = row["label"].strip() or None
            pictures.append(
                Picture(
                    item=f"{table.name}:{number}",
                    image=table.parent / row["image"],
                    person=label or f"line {number}",
                    label=label,
                    bbox=bbox,
                    source=(row.get("source") or "").strip() or None,
                )
            )
    return pictures


def read_state(path: Path) -> tuple[dict[str, dict], dict[str, str]]:
    """``(outcome by item, person_id by person)`` of earlier runs."""
    outcomes: dict[str, dict] = {}
    persons: dict[str, str] = {}
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                outcome = json.loads(line)
                outcomes[outcome["item"]] = outcome
                if "person_id" in outcome:
                    persons[outcome["person"]] = outcome["person_id"]
    return outcomes, persons


def enrol_all(
    client: ReIDClient, pictures: list[Picture], state: Path, progress: Callable[[list[Picture]], Iterable[Picture]]
) -> tuple[int, list[dict]]:
    """Store the pictures not stored or refused before; ``(stored now, every refusal so far)``.
    A refusal of a picture (PICTURE_REFUSALS) is recorded and skipped; any other failure stops
    the run, to be resumed."""
    from reid.clients.client import ClientError

    outcomes, persons = read_state(state)
    todo = [picture for picture in pictures if picture.item not in outcomes]
    stored = 0
    with state.open("a", encoding="utf-8") as log:
        for picture in progress(todo):
            try:
                entry = _store(client, picture, persons.get(picture.person))
            except ClientError as error:
                if error.status not in PICTURE_REFUSALS:
                    raise
                outcome = {"item": picture.item, "refused": error.status, "error": error.error, "field": error.field}
            else:
                persons[picture.person] = entry.person_id
                outcome = {"item": picture.item, "person": picture.person, "person_id": entry.person_id}
                stored += 1
            outcomes[picture.item] = outcome
            log.write(json.dumps(outcome, ensure_ascii=False) + "\n")
            log.flush()
    return stored, [outcome for outcome in outcomes.values() if "refused" in outcome]


def _store(client: ReIDClient, picture: Picture, person_id: str | None) -> GalleryEntry:
    """Enrol the picture's person, or add the picture to it when it was enrolled already (anew
    when it has left the gallery since)."""
    from reid.clients.client import ClientError

    key = _key(picture)
    if person_id is not None:
        try:
            return client.add_view(person_id, picture.image, picture.bbox, picture.source, idempotency_key=key)
        except ClientError as error:
            if error.status != 404 or error.field is not None:
                raise
    return client.enrol(
        picture.image, picture.bbox, picture.label, None, picture.source, idempotency_key=f"{key}-enrol"
    )


def _key(picture: Picture) -> str:
    """An idempotency key for the picture: its place, box and content."""
    digest = hashlib.sha256(f"{picture.item}\0{picture.bbox}\0{picture.person}".encode())
    digest.update(picture.image.read_bytes())
    return f"bulk-{digest.hexdigest()[:48]}"
