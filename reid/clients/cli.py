"""The ``reid`` command.

    reid compare A.jpg B.jpg [--url URL] [--api-key KEY] [--threshold T] [--json] [--out picture.jpg]
    reid models import [--from DIR] [...]
    reid models list

Without --url, ``compare`` runs in this process with the models of the local BentoML store.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path
from typing import Any

from reid.errors import RequestError
from reid.schemas import CompareResponse


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


def compare(args: argparse.Namespace) -> int:
    """The ``compare`` command: against a server (``--url``) or in this process."""
    from reid.config import get_settings
    from reid.core.images import decode_upload

    settings = get_settings()

    def decoded() -> list:
        return [
            decode_upload(args.image1.read_bytes(), "image1", settings),
            decode_upload(args.image2.read_bytes(), "image2", settings),
        ]

    images = None
    if args.url:
        from reid.clients.client import ReIDClient

        with ReIDClient(args.url, api_key=args.api_key) as client:
            answer = client.compare(args.image1, args.image2, threshold=args.threshold)
    else:
        from reid.models.loading import LocalReID

        images = decoded()
        answer = asyncio.run(LocalReID(settings).compare(images[0], images[1], threshold=args.threshold))
    print(answer.model_dump_json(indent=2) if args.json else describe(answer))
    if args.out:
        from reid.core.visualize import encode_jpeg, render

        images = decoded() if images is None else images
        args.out.write_bytes(encode_jpeg(render(images[0], images[1], answer)))
        print(f"picture written to {args.out}", file=sys.stderr)
    return 0


def list_models(_: argparse.Namespace) -> int:
    """The ``models list`` command: every stored detector and embedder, newest first."""
    import bentoml
    from bentoml.exceptions import NotFound

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
            keys = ("architecture", "backend", "confidence", "threshold", "quantized")
            details = ", ".join(f"{k} {spec[k]}" for k in keys if k in spec)
            print(f"{model.tag}  {details}  ({metadata.get('source', '')})")
    return 0


def parser() -> argparse.ArgumentParser:
    """The ``reid`` command's arguments."""
    from reid.models.importer import add_arguments, run

    top = argparse.ArgumentParser(
        prog="reid", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = top.add_subparsers(dest="command", required=True)

    c = commands.add_parser("compare", help="which persons of image1 appear in image2")
    c.add_argument("image1", type=Path)
    c.add_argument("image2", type=Path)
    c.add_argument("--url", help="a running service (default: run in this process)")
    c.add_argument("--api-key", default=os.environ.get("REID_API_KEY"), help="default: $REID_API_KEY")
    c.add_argument("--threshold", type=float)
    c.add_argument("--json", action="store_true", help="print the JSON answer")
    c.add_argument("--out", type=Path, help="write a picture of the matches (JPEG)")
    c.set_defaults(handler=compare)

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
