"""Every tunable of the service, in one place, overridable by ``REID_*`` environment variables.

Serving topology (workers, CPU/memory resources, traffic timeouts and concurrency per
BentoML service) is BentoML's own configuration, not listed here: see docs/deployment.md.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

MiB = 1024 * 1024


class Settings(BaseSettings):
    """The service's settings, each from its ``REID_*`` environment variable (see docs/settings.md)."""

    model_config = SettingsConfigDict(env_prefix="REID_", frozen=True, extra="ignore")

    # Models, referred to by BentoML model-store tag.
    detector_model: str = Field("person-detector:latest", description="Model-store tag of the detector.")
    embedder_model: str = Field("person-embedder:latest", description="Model-store tag of the embedder.")
    models_dir: Path | None = Field(None, description="Offline source for reid models import (e.g. ../shared/models).")
    calibration_crops: Path | None = Field(
        None,
        description="Labelled crops (query/, gallery/) that reid models import quantises the embedder on and checks"
        " it with (e.g. ../shared/data/cuhk03-pair1).",
    )

    # PersonDetector.
    confidence: float | None = Field(
        None, ge=0.0, le=1.0, description="Minimum detection score; unset means the detector's calibrated value."
    )
    nms_iou: float = Field(0.7, gt=0.0, le=1.0, description="IoU of an ultralytics detector's NMS.")
    max_detections: int = Field(100, ge=1, description="Most persons kept per image.")
    min_box_side: float = Field(
        4.0, ge=0.0, description="Boxes narrower or shorter than this (detector-input pixels) are dropped."
    )
    tile_zoom: float = Field(
        0.0,
        ge=0.0,
        description="Also detect on overlapping tiles this many times finer than the whole image, where the image"
        " is that much larger than the detector's input (0: whole images only).",
    )
    detector_max_batch_size: int = Field(8, ge=1, description="Images per adaptive batch.")
    detector_max_latency_ms: int = Field(
        20_000, ge=1, description="Queue deadline of the detector's batcher; later requests get 503."
    )

    # Persons: which detections count, which can be matched (applied by the entry service).
    containment: float = Field(
        0.0,
        ge=0.0,
        le=1.0,
        description="A box with this share of its area inside a bigger person's box is dropped when its embedding"
        " matches that person's (a partial view; 0: off).",
    )
    min_person_height: int = Field(
        24, ge=0, description="Persons shorter than this (uploaded-image pixels) are reported but not matched."
    )
    min_person_aspect: float = Field(
        1.0, ge=0.0, description="Persons whose box height / width is under this are reported but not matched."
    )
    box_padding: float = Field(
        0.0, ge=0.0, le=1.0, description="Crop each person with this fraction of the box size added on every side."
    )

    device: str = Field(
        "cpu", description="cpu, or cuda[:N] for a .pt detector and a torchreid embedder (exports stay on the CPU)."
    )

    batch_max_wait_ms: float = Field(
        10.0,
        ge=0.0,
        description="Most a lone request waits for others to join its adaptive batch (detector and embedder);"
        " under load, batches fill while the previous one runs.",
    )
    warmup_calls: int = Field(
        40,
        ge=0,
        description="Small calls of each model service that train BentoML's adaptive batchers before the"
        " service says ready (they need about 35); fewer start sooner, and a burst soon after may get 503.",
    )

    # PersonEmbedder.
    embed_flip: bool = Field(False, description="Average each crop's embedding with its mirror image's.")
    embedder_max_batch_size: int = Field(256, ge=1, description="Crops per adaptive batch.")
    embedder_max_latency_ms: int = Field(20_000, ge=1, description="Queue deadline of the embedder's batcher.")
    embedder_threads: int = Field(0, ge=0, description="Inference threads of the embedder (0: runtime default).")

    # Matching.
    threshold: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        description="Default similarity threshold; unset means the embedder's calibrated value.",
    )

    # Access and load.
    api_key: SecretStr | None = Field(
        None,
        description="When set, every API route (/compare, /group, /gallery...) needs it as"
        " 'Authorization: Bearer <key>' or 'X-API-Key'.",
    )
    metrics_need_key: bool = Field(
        False, description="When true and REID_API_KEY is set, GET /metrics needs the key too (default: open)."
    )
    max_in_flight: int = Field(
        16, ge=1, description="Requests the entry service works on at once; more get 503 with Retry-After."
    )
    request_timeout_s: float = Field(30.0, gt=0, description="A request still unanswered after this gets 504.")
    upload_timeout_s: float = Field(30.0, gt=0, description="A request body must arrive within this, else 408.")
    min_upload_rate: float = Field(
        32_768, gt=0, description="Bytes per second a body must keep up after its first second, else 408."
    )
    header_timeout_s: float = Field(
        10.0,
        gt=0,
        description="A connection must send a whole request head within this of opening or of its last response,"
        " else it is closed.",
    )
    max_persons: int = Field(
        50,
        ge=1,
        description="Most persons per image sent to the embedder (the most confident); the rest are not matched.",
    )

    # The gallery.
    gallery_uri: str = Field(
        "reid-gallery.sqlite3",
        description="Where the gallery of people lives: a SQLite file path (created when missing, its folder must"
        " exist), or a postgresql+psycopg://user:password@host/db URL of a server with pgvector 0.8 or newer,"
        " which several replicas share.",
    )
    gallery_keep_crops: bool = Field(
        False, description="Keep each view's crop (JPEG) in the gallery, so that it can be re-embedded."
    )
    gallery_retention_days: float | None = Field(
        None,
        gt=0,
        description="Erase views stored more than this many days ago, and persons left without views: at start,"
        " then at most hourly on the gallery's next use. Unset: kept until deleted.",
    )

    # Input limits.
    max_image_bytes: int = Field(20 * MiB, ge=1, description="Largest accepted upload per image.")
    max_image_pixels: int = Field(
        40_000_000, ge=1, description="Largest accepted width x height per image (decompression bombs)."
    )
    max_group_images: int = Field(16, ge=2, description="Most images one /group request takes.")
    max_group_bytes: int = Field(
        64 * MiB,
        ge=1,
        description="Largest /group request body, all its images together (each under the per-image caps).",
    )
    upload_memory_bytes: int = Field(
        256 * MiB, ge=1, description="Request bodies held at once, all requests together (each twice); beyond, 503."
    )
    decode_memory_bytes: int = Field(
        640 * MiB,
        ge=1,
        description="Memory for decoding images, all requests together, estimated from each header (size,"
        " channels, bit depth): requests wait for it; a pair of images that needs more gets 413.",
    )

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        """Refuse settings that contradict each other at start-up, not on the first big request."""
        largest = max(self.max_request_bytes, self.max_group_bytes)
        if self.upload_memory_bytes < 2 * largest:
            raise ValueError(
                f"REID_UPLOAD_MEMORY_BYTES ({self.upload_memory_bytes}) cannot hold one request of the largest size"
                f" twice ({2 * largest} bytes, from REID_MAX_IMAGE_BYTES and REID_MAX_GROUP_BYTES)"
            )
        return self

    @property
    def max_request_bytes(self) -> int:
        """A compare's body: two images plus room for the multipart framing and the threshold field."""
        return 2 * self.max_image_bytes + 64 * 1024


def check_against_traffic(settings: Settings, traffic: dict) -> None:
    """Refuse settings that contradict the entry's BentoML ``traffic`` configuration: the
    service's own limits must answer (503, 504, in its shape) before BentoML's (429, 504)."""
    if (limit := traffic.get("max_concurrency")) and settings.max_in_flight > limit:
        raise ValueError(f"REID_MAX_IN_FLIGHT ({settings.max_in_flight}) is over the entry's max_concurrency ({limit})")
    if (limit := traffic.get("timeout")) and settings.request_timeout_s >= limit:
        raise ValueError(
            f"REID_REQUEST_TIMEOUT_S ({settings.request_timeout_s}) is not under the entry's traffic timeout ({limit})"
        )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The settings of this process, read once."""
    return Settings()


def settings_table() -> str:
    """The settings as a Markdown table (environment variable, default, meaning) for docs/settings.md."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        default = "unset" if field.default is None else f"`{field.default}`"
        rows.append(f"| `REID_{name.upper()}` | {default} | {field.description or ''} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(settings_table())
