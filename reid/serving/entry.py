"""How the entry service answers an upload: decode the images under the memory budget, compare
or group them under the request timeout, present the answer (JSON or a picture), observe and log
it. Every failure ends as a JSON refusal; nothing escapes as a 500.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import numpy as np
from starlette.responses import JSONResponse, Response

from reid.config import MiB, Settings
from reid.core.images import ImageHeader, decode, read_upload_header
from reid.core.pipeline import ReIDPipeline, build_response
from reid.errors import RequestError, TimedOut, TooLarge, Unavailable
from reid.schemas import CompareResponse, GroupResponse
from reid.serving.http.responses import error_response
from reid.serving.memory import ByteBudget, MemoryReleaser

# The decoded images, in upload order -> what the endpoint returns
Work = Callable[[list[np.ndarray]], Awaitable[Any]]
# When the request being answered times out (time.monotonic()): work that must finish or undo
# itself before the answer (a gallery write) ends before it.
DEADLINE: ContextVar[float] = ContextVar("reid_deadline", default=float("inf"))


class UploadHandler:
    """Answers the image endpoints (``/compare``, ``/group``, their pictures, the gallery's uploads)
    with one pipeline: decoding, budgets, timeout and refusals are the same for all."""

    def __init__(self, settings: Settings, pipeline: ReIDPipeline) -> None:
        from reid.serving.logs import json_logger

        self.settings = settings
        self.pipeline = pipeline
        self.decoding = ByteBudget(settings.decode_memory_bytes)
        # Two decodes at a time (this machine's cores): a heavy image delays others' decoding,
        # it cannot take every core.
        self.decoders = concurrent.futures.ThreadPoolExecutor(2, thread_name_prefix="decode")
        self.log = json_logger()
        self.release_memory = MemoryReleaser(interval=1.0)

    async def respond(self, uploads: Sequence[tuple[str, Path | bytes]], work: Work) -> Any:
        """``work(images)`` of the uploads ``(field, file or its bytes)`` decoded, or the refusal
        as a JSON error."""
        timeout = self.settings.request_timeout_s
        DEADLINE.set(time.monotonic() + timeout)
        try:
            async with asyncio.timeout(timeout):
                async with self._decoded(uploads) as images:
                    return await work(images)
        except TimeoutError:
            return self.refuse(TimedOut(f"no answer within {timeout} s; retry"))
        except RequestError as error:
            return self.refuse(error)
        except Exception:
            self.log.exception("compare failed")
            return self.refuse(Unavailable("the service failed to answer; retry"))
        finally:
            self._after_request()

    async def compare(self, images: list[np.ndarray], threshold: float | None) -> CompareResponse:
        """The compare answer of two images, observed and logged."""
        from reid.serving.metrics import MATCH_SIMILARITY, PERSONS_PER_IMAGE, stage

        analysis = await self.pipeline.analyse(*images)
        with stage("match"):
            chosen = self.pipeline.threshold_or_default(threshold)
            answer = build_response(analysis, chosen, self.pipeline.models)
        for count in (answer.image1_person_count, answer.image2_person_count):
            PERSONS_PER_IMAGE.observe(count)
        for match in answer.matches:
            MATCH_SIMILARITY.observe(match.similarity)
        self.log.info(
            "compared",
            extra={
                "persons": [answer.image1_person_count, answer.image2_person_count],
                "matches": len(answer.matches),
                "threshold": answer.threshold,
            },
        )
        return answer

    async def group(self, images: list[np.ndarray], threshold: float | None) -> GroupResponse:
        """The group answer of the images, observed and logged."""
        from reid.serving.metrics import PERSONS_PER_IMAGE

        answer = await self.pipeline.group(images, threshold)
        for image in answer.images:
            PERSONS_PER_IMAGE.observe(image.person_count)
        self.log.info(
            "grouped",
            extra={
                "persons": [image.person_count for image in answer.images],
                "identities": len(answer.identities),
                "threshold": answer.threshold,
            },
        )
        return answer

    @staticmethod
    async def picture(draw: Callable[[], np.ndarray]) -> Response:
        """The JPEG of ``draw()``, drawn off the event loop and under the request's timeout."""
        from reid.core.visualize import encode_jpeg

        return Response(await asyncio.to_thread(lambda: encode_jpeg(draw())), media_type="image/jpeg")

    @asynccontextmanager
    async def _decoded(self, uploads: Sequence[tuple[str, Path | bytes]]) -> AsyncIterator[list[np.ndarray]]:
        """The uploads decoded, their memory reserved from the decode budget: the estimated peak
        while decoding, then the decoded arrays until the answer is out."""
        from reid.serving.metrics import stage

        with stage("decode"):
            fields = [field for field, _ in uploads]
            data = await asyncio.gather(*(_read(upload) for _, upload in uploads))
            headers = await asyncio.gather(
                *(asyncio.to_thread(read_upload_header, raw, field, self.settings) for raw, field in zip(data, fields))
            )
            peak = self._reservation(headers, fields)
            await self.decoding.reserve(peak)
            images = await self._decode_all(data, headers, fields, peak)
            kept = sum(header.rgb_bytes for header in headers)
            self.decoding.release(peak - kept)
        try:
            yield images
        finally:
            self.decoding.release(kept)

    def _reservation(self, headers: list[ImageHeader], fields: list[str]) -> int:
        peak = sum(header.decode_bytes for header in headers)
        if peak > self.decoding.total:
            largest = max(range(len(headers)), key=lambda i: headers[i].decode_bytes)
            raise TooLarge(
                f"decoding these images needs about {peak // MiB} MiB, over the service's"
                f" {self.decoding.total // MiB} MiB (REID_DECODE_MEMORY_BYTES); send smaller or 8-bit images",
                field=fields[largest],
            )
        return peak

    async def _decode_all(
        self, data: list[bytes], headers: list[ImageHeader], fields: list[str], peak: int
    ) -> list[np.ndarray]:
        jobs = [
            self.decoders.submit(decode, raw, header, field=field) for raw, header, field in zip(data, headers, fields)
        ]
        try:
            return list(await asyncio.gather(*(asyncio.wrap_future(job) for job in jobs)))
        except BaseException:
            # Abandoned (timed out, refused) decodes run to their end holding their memory: give
            # the reservation back only then.
            self._release_when_done(jobs, peak)
            raise

    def _release_when_done(self, jobs: list[concurrent.futures.Future], amount: int) -> None:
        loop = asyncio.get_running_loop()
        remaining = [len(jobs)]

        def done(_: concurrent.futures.Future) -> None:
            remaining[0] -= 1
            if remaining[0] == 0:
                loop.call_soon_threadsafe(self.decoding.release, amount)

        for job in jobs:
            job.add_done_callback(done)

    def refuse(self, error: RequestError) -> JSONResponse:
        """The refusal's response, counted and logged."""
        count_rejection(error)
        return error_response(error)

    def _after_request(self) -> None:
        """A request's arrays, and a refused one's traceback, can sit in reference cycles until a
        full collection, megabytes each: collect them and hand the heap back, off the request's
        path and at most once a second (measured with scripts/soak.py)."""
        asyncio.get_running_loop().run_in_executor(None, self.release_memory)


async def _read(upload: Path | bytes) -> bytes:
    return upload if isinstance(upload, bytes) else await asyncio.to_thread(upload.read_bytes)


def count_rejection(error: RequestError) -> None:
    """The metric and the log line of a refused request."""
    from reid.serving.logs import json_logger
    from reid.serving.metrics import reject

    reject(error.reason)
    json_logger().info("rejected", extra={"reason": error.reason, "status": int(error.status), "error": str(error)})
