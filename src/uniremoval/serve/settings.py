"""Limits and defaults of the HTTP server, as one typed, validated value."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ServeSettings:
    """What the server accepts and how much work it takes on at once.

    Attributes:
        max_upload_bytes: largest accepted image upload (the file part, in bytes); bigger
            uploads get 413 while they are still being read.
        max_pixels: largest accepted decoded image (width x height); bigger gets 413. Far
            below the CLI's default because a server must survive decompression bombs and
            many users at once.
        max_concurrent: images restored at the same time (the model's worker threads). On a
            CPU one job already uses every core, so 1 is best there.
        queue_size: requests allowed to wait for a worker; beyond ``max_concurrent +
            queue_size`` requests in flight the server answers 503 with Retry-After.
        request_timeout_s: a request that has not been answered after this long (reading the
            upload, waiting in the queue and restoring together) gets 408 (upload too slow)
            or 504 (queue/restore too slow); its work is stopped at the next tile.
        retry_after_s: the Retry-After value sent with 503.
        default_jpeg_quality: JPEG/WebP quality when a request names none.
        max_tile: largest per-request ``tile`` value accepted.
    """

    max_upload_bytes: int = 50 * 1024 * 1024
    max_pixels: int = 40_000_000
    max_concurrent: int = 1
    queue_size: int = 8
    request_timeout_s: float = 120.0
    retry_after_s: int = 5
    default_jpeg_quality: int = 95
    max_tile: int = 8192

    def __post_init__(self) -> None:
        # Fail at start-up with a clear message rather than misbehave under load.
        if self.max_upload_bytes < 1:
            raise ValueError("max_upload_bytes must be positive")
        if self.max_pixels < 1:
            raise ValueError("max_pixels must be positive")
        if self.max_concurrent < 1:
            raise ValueError("max_concurrent must be at least 1")
        if self.queue_size < 0:
            raise ValueError("queue_size must be >= 0")
        if self.request_timeout_s <= 0:
            raise ValueError("request_timeout_s must be positive")
        if self.retry_after_s < 1:
            raise ValueError("retry_after_s must be at least 1")
        if not 1 <= self.default_jpeg_quality <= 100:
            raise ValueError("default_jpeg_quality must be in 1..100")

    @property
    def capacity(self) -> int:
        """Requests that may be in flight (restoring or queued) before 503."""
        return self.max_concurrent + self.queue_size
