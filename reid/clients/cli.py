"""The ``reid`` command.

    reid compare A.jpg B.jpg [--url URL] [--api-key KEY] [--threshold T] [--json] [--out picture.jpg]
    reid group A.jpg B.jpg C.jpg ... [--url URL] [--api-key KEY] [--threshold T] [--json] [--out grid.jpg]
    reid gallery enrol IMAGE [--bbox x1,y1,x2,y2] [--label TEXT] [--metadata JSON] [--source TEXT]
                             [--idempotency-key KEY] [--url URL]
    reid gallery add-view ID IMAGE [--bbox x1,y1,x2,y2] [--source TEXT] [--idempotency-key KEY] [--url URL]
    reid gallery enrol-folder DIR | --csv FILE [--state FILE] [--url URL]
    reid gallery search IMAGE [--top-k K] [--threshold T] [--url URL]
    reid gallery list [--offset N] [--limit N] | get ID | delete ID | clear --yes   [--url URL]
    reid gallery edit ID [--label TEXT | --no-label] [--metadata JSON]   [--url URL]
    reid gallery merge ID FROM_ID | delete-view ID VIEW_ID   [--url URL]
    reid gallery reembed [--uri REID_GALLERY_URI]
    reid models import [--from DIR] [...]
    reid models list

Without --url, ``compare`` and ``group`` run in this process with the models of the local BentoML
store; the gallery commands talk to a service (default http://localhost:3000), except
``reembed``, which opens the store itself.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path
from typing import Any

from reid.errors import RequestError
from reid.schemas import CompareResponse, GroupResponse


def describe(answer: CompareResponse) -> str:
    """A human-readable account of an answer."""
    lines = [
        f"image1: {answer.image1_person_count} persons, image2: {answer.image2_person_count} persons, "
        f"{len(answer.matches)} matched (threshold {answer.threshold:.2f})"
    ]
    for m in answer.matches:
        lines.append(
            f"  image1 #{m.image1_index} {m.bbox_image1} = image2 #{m.image2_index} {m.bbox_image2}"
            f"  similarity {m.similarity:.3f}"
        )
    lines.append(f"unmatched in image1: {answer.unmatched_image1 or 'none'}")
    lines.append(f"unmatched in image2: {answer.unmatched_image2 or 'none'}")
    return "\n".join(lines)


def describe_group(answer: GroupResponse) -> str:
    """A human-readable account of a group answer."""
    counts = ", ".join(f"image{k}: {image.person_count}" for k, image in enumerate(answer.images))
    lines = [f"{answer.image_count} images ({counts} persons), {len(answer.identities)} identities"]
    for identity in answer.identities:
        seen = "  ".join(f"image{m.image_index} #{m.person_index} {m.bbox}" for m in identity.members)
        lines.append(f"  identity {identity.identity}: {seen}")
    return "\n".join(lines)


def group(args: argparse.Namespace) -> int:
    """The ``group`` command: against a server (``--url``) or in this process."""
    from reid.core.visualize import render_group

    return _answer(
        args,
        [(f"images[{k}]", path) for k, path in enumerate(args.images)],
        over_http=lambda client: client.group(args.images, threshold=args.threshold),
        in_process=lambda local, images: local.group(images, threshold=args.threshold),
        describe=describe_group,
        draw=render_group,
    )


def compare(args: argparse.Namespace) -> int:
    """The ``compare`` command: against a server (``--url``) or in this process."""
    from reid.core.visualize import render

    return _answer(
        args,
        [("image1", args.image1), ("image2", args.image2)],
        over_http=lambda client: client.compare(args.image1, args.image2, threshold=args.threshold),
        in_process=lambda local, images: local.compare(images[0], images[1], threshold=args.threshold),
        describe=describe,
        draw=lambda images, answer: render(images[0], images[1], answer),
    )


def _answer(args: argparse.Namespace, files: list[tuple[str, Path]], *, over_http, in_process, describe, draw) -> int:
    """Answer from the server (``--url``) or in this process; print it; draw it (``--out``)."""
    from reid.config import get_settings
    from reid.core.images import decode_upload

    settings = get_settings()

    def decoded() -> list:
        return [decode_upload(path.read_bytes(), field, settings) for field, path in files]

    images = None
    if args.url:
        from reid.clients.client import ReIDClient

        with ReIDClient(args.url, api_key=args.api_key) as client:
            answer = over_http(client)
    else:
        from reid.assembly import LocalReID

        images = decoded()
        answer = asyncio.run(in_process(LocalReID(settings), images))
    print(answer.model_dump_json(indent=2) if args.json else describe(answer))
    if args.out:
        from reid.core.visualize import encode_jpeg

        args.out.write_bytes(encode_jpeg(draw(decoded() if images is None else images, answer)))
        print(f"picture written to {args.out}", file=sys.stderr)
    return 0


def gallery(args: argparse.Namespace) -> int:
    """The ``gallery`` commands over HTTP: enrol, add-view, search, list, get, edit, merge,
    delete-view, delete, clear."""
    import json

    from reid.clients.client import ReIDClient

    with ReIDClient(args.url, api_key=args.api_key) as client:
        bbox = [int(v) for v in args.bbox.split(",")] if getattr(args, "bbox", None) else None
        if args.action == "enrol":
            metadata = json.loads(args.metadata) if args.metadata else None
            answer: Any = client.enrol(
                args.image, bbox, args.label, metadata, args.source, idempotency_key=args.idempotency_key
            )
        elif args.action == "add-view":
            answer = client.add_view(args.person_id, args.image, bbox, args.source, args.idempotency_key)
        elif args.action == "merge":
            answer = client.merge(args.person_id, args.from_id)
        elif args.action == "delete-view":
            answer = client.delete_view(args.person_id, args.view_id)
        elif args.action == "search":
            answer = client.search(args.image, top_k=args.top_k, threshold=args.threshold)
        elif args.action == "list":
            answer = client.gallery_page(args.offset, args.limit)
        elif args.action == "get":
            answer = client.gallery_person(args.person_id)
        elif args.action == "edit":
            changes: dict[str, Any] = {"label": None} if args.no_label else {}
            if args.label is not None:
                changes["label"] = args.label
            if args.metadata is not None:
                changes["metadata"] = json.loads(args.metadata)
            if not changes:
                raise ValueError("edit changes --label, --no-label or --metadata: give one")
            answer = client.edit_person(args.person_id, **changes)
        elif args.action == "delete":
            answer = client.delete_person(args.person_id)
        else:
            if not args.yes:
                raise ValueError("clear deletes every person of the gallery: add --yes")
            answer = client.clear_gallery()
    print(answer.model_dump_json(indent=2))
    return 0


def enrol_folder(args: argparse.Namespace) -> int:
    """The ``gallery enrol-folder`` command: many pictures, resumably, with a progress bar and
    a report of what was refused."""
    from rich.console import Console
    from rich.progress import track

    from reid.clients.bulk import STATE_NAME, csv_pictures, enrol_all, folder_pictures
    from reid.clients.client import ReIDClient

    if (args.folder is None) == (args.csv is None):
        raise ValueError("give a folder (one folder per person) or --csv FILE, not both")
    pictures = folder_pictures(args.folder) if args.folder else csv_pictures(args.csv)
    state = args.state or (args.folder or args.csv.parent) / STATE_NAME
    console = Console(stderr=True)

    def progress(todo: list) -> Any:
        return track(todo, description="enrolling", console=console, transient=False)

    with ReIDClient(args.url, api_key=args.api_key) as client:
        stored, refused = enrol_all(client, pictures, state, progress)
    persons = len({picture.person for picture in pictures})
    print(f"{stored} pictures stored now; {len(pictures)} pictures of {persons} persons in all; state in {state}")
    for outcome in refused:
        where = f" ({outcome['field']})" if outcome.get("field") else ""
        print(f"refused {outcome['item']}: {outcome['refused']}{where} {outcome['error']}")
    return 1 if refused else 0


def reembed(args: argparse.Namespace) -> int:
    """The ``gallery reembed`` command: give every kept crop an embedding of the current embedder."""
    from reid.config import get_settings
    from reid.core.images import decode_upload
    from reid.gallery.store import Gallery
    from reid.models.loading import StoredModels

    settings = get_settings()
    models = StoredModels.open(settings, detector=False)
    embedder = models.load_embedder(settings)
    store = Gallery(args.uri or settings.gallery_uri, models.tags.embedder)
    done = 0
    for view_id, model, crop in store.crops():
        if model != models.tags.embedder:
            image = decode_upload(crop, "crop", settings)
            store.replace_embedding(view_id, embedder.embed([image])[0], models.tags.embedder)
            done += 1
    current, others = store.counts()
    print(f"re-embedded {done} views with {models.tags.embedder}; {current} persons of it in the gallery")
    if others:
        print(f"{others} persons of other embedders have no kept crop: re-enrol or delete them", file=sys.stderr)
        return 1
    return 0


def list_models(_: argparse.Namespace) -> int:
    """The ``models list`` command: every stored detector and embedder, newest first."""
    import bentoml
    from bentoml.exceptions import NotFound

    from reid.models.specs import describe_spec
    from reid.models.store import DETECTOR_NAME, EMBEDDER_NAME

    for name in (DETECTOR_NAME, EMBEDDER_NAME):
        try:
            versions = bentoml.models.list(name)
        except NotFound:
            versions = []
        if not versions:
            print(f"{name}: not imported (reid models import)")
        for model in sorted(versions, key=lambda m: m.info.creation_time, reverse=True):
            metadata: dict[str, Any] = dict(model.info.metadata)
            spec = metadata.get("spec", {})
            print(f"{model.tag}  {describe_spec(spec)}  ({metadata.get('source', '')})")
    return 0


def parser() -> argparse.ArgumentParser:
    """The ``reid`` command's arguments."""
    from reid.models.importer import add_arguments, run

    top = argparse.ArgumentParser(
        prog="reid", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = top.add_subparsers(dest="command", required=True)

    def common(command: argparse.ArgumentParser, picture: str) -> None:
        command.add_argument("--url", help="a running service (default: run in this process)")
        command.add_argument("--api-key", default=os.environ.get("REID_API_KEY"), help="default: $REID_API_KEY")
        command.add_argument("--threshold", type=float)
        command.add_argument("--json", action="store_true", help="print the JSON answer")
        command.add_argument("--out", type=Path, help=f"write a picture of the {picture} (JPEG)")

    c = commands.add_parser("compare", help="which persons of image1 appear in image2")
    c.add_argument("image1", type=Path)
    c.add_argument("image2", type=Path)
    common(c, "matches")
    c.set_defaults(handler=compare)

    g = commands.add_parser("group", help="which persons of many images are the same people")
    g.add_argument("images", type=Path, nargs="+")
    common(g, "identities")
    g.set_defaults(handler=group)

    actions = commands.add_parser("gallery", help="the service's gallery of people").add_subparsers(
        dest="action", required=True
    )

    def over_http(action: argparse.ArgumentParser) -> argparse.ArgumentParser:
        action.add_argument("--url", default="http://localhost:3000", help="the service (default: %(default)s)")
        action.add_argument("--api-key", default=os.environ.get("REID_API_KEY"), help="default: $REID_API_KEY")
        action.set_defaults(handler=gallery)
        return action

    e = over_http(actions.add_parser("enrol", help="store the person of an image"))
    e.add_argument("image", type=Path)
    e.add_argument("--bbox", help="x1,y1,x2,y2 of the person (default: the image's only person)")
    e.add_argument("--label")
    e.add_argument("--metadata", help="a JSON object")
    e.add_argument("--source", help="where the picture came from (a camera's name)")
    e.add_argument("--idempotency-key", help="the same key again returns the person stored the first time")
    v = over_http(actions.add_parser("add-view", help="add another picture of a stored person"))
    v.add_argument("person_id")
    v.add_argument("image", type=Path)
    v.add_argument("--bbox", help="x1,y1,x2,y2 of the person (default: the image's only person)")
    v.add_argument("--source", help="where the picture came from (a camera's name)")
    v.add_argument("--idempotency-key", help="the same key again returns the view stored the first time")
    f = over_http(actions.add_parser("enrol-folder", help="enrol many pictures: a folder per person, or a CSV"))
    f.add_argument("folder", type=Path, nargs="?", help="DIR/<label>/[<source>/]<picture>")
    f.add_argument("--csv", type=Path, help="a CSV of image,bbox,label[,source], paths relative to it")
    f.add_argument(
        "--state",
        type=Path,
        help="what was done, for resuming (default: .reid-enrolled.jsonl in DIR, or beside the CSV)",
    )
    f.set_defaults(handler=enrol_folder)
    s = over_http(actions.add_parser("search", help="the gallery persons most like each person of an image"))
    s.add_argument("image", type=Path)
    s.add_argument("--top-k", type=int)
    s.add_argument("--threshold", type=float)
    listing = over_http(actions.add_parser("list", help="the stored persons, oldest first"))
    listing.add_argument("--offset", type=int, default=0)
    listing.add_argument("--limit", type=int, default=20)
    over_http(actions.add_parser("get", help="one stored person")).add_argument("person_id")
    edit = over_http(actions.add_parser("edit", help="change a stored person's label or metadata"))
    edit.add_argument("person_id")
    naming = edit.add_mutually_exclusive_group()
    naming.add_argument("--label", help="the new label")
    naming.add_argument("--no-label", action="store_true", help="remove the label")
    edit.add_argument("--metadata", help="a JSON object: the new metadata, replacing the old")
    m = over_http(actions.add_parser("merge", help="move another person's views to this one, and remove it"))
    m.add_argument("person_id")
    m.add_argument("from_id")
    d = over_http(actions.add_parser("delete-view", help="remove one view of a stored person"))
    d.add_argument("person_id")
    d.add_argument("view_id")
    over_http(actions.add_parser("delete", help="remove one stored person")).add_argument("person_id")
    over_http(actions.add_parser("clear", help="remove every stored person")).add_argument("--yes", action="store_true")
    r = actions.add_parser("reembed", help="re-embed the kept crops with the current embedder (no server)")
    r.add_argument("--uri", help="the gallery (default: $REID_GALLERY_URI)")
    r.set_defaults(handler=reembed)

    models = commands.add_parser("models", help="the models in the BentoML store").add_subparsers(
        dest="action", required=True
    )
    add_arguments(i := models.add_parser("import", help="put the detector and embedder in the store"))
    i.set_defaults(handler=run)
    models.add_parser("list", help="list the stored detectors and embedders").set_defaults(handler=list_models)
    return top


def main(argv: list[str] | None = None) -> int:
    """Run the ``reid`` command; errors are one line on stderr and exit status 1."""
    from reid.clients.client import ReIDError

    args = parser().parse_args(argv)
    try:
        return args.handler(args)
    except (ReIDError, RequestError) as error:
        print(f"reid: {error}", file=sys.stderr)
        return 1
    except (OSError, ValueError, RuntimeError) as error:
        print(f"reid: {type(error).__name__}: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
