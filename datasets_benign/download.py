"""Downloads for URL manifests: sha256-verified, atomic, into a local cache, never re-fetched.

The cache folder is ``$HASH_HARNESS_CACHE/downloads`` (default ``~/.cache/hash-harness``); files
are stored under their expected sha256, so a verified file is never fetched twice and a wrong
one never enters the cache. Every problem (HTTP error, truncated body, wrong checksum, too large)
is an :class:`~harness.core.errors.ImageLoadError`: that image fails with the reason, the run
goes on.
"""

from __future__ import annotations

import http.client
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from datasets_benign.decode import file_sha256
from harness.core.errors import ImageLoadError

#: Largest download accepted (a 100-megapixel PNG is well under this).
MAX_BYTES = 512 * 1024 * 1024
TIMEOUT_S = 60


def cache_dir() -> Path:
    root = os.environ.get("HASH_HARNESS_CACHE") or str(Path.home() / ".cache" / "hash-harness")
    return Path(root) / "downloads"


def check_file(path: Path, expected: str) -> None:
    try:
        actual = file_sha256(path)
    except OSError as exc:
        raise ImageLoadError(f"cannot read {path.name}: {exc.strerror}") from exc
    if actual != expected:
        raise ImageLoadError(
            f"file sha256 {actual[:12]}... does not match the manifest's {expected[:12]}..."
        )


def fetch(url: str, expected: str | None) -> Path:
    """The verified local copy of ``url`` (downloaded on first use)."""
    if not url.startswith(("http://", "https://")):
        raise ImageLoadError(f"only http(s) URLs can be downloaded, got {url[:40]!r}")
    if expected is None:
        raise ImageLoadError("a URL entry needs the file's sha256 in the manifest")
    target = cache_dir() / expected
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".part-")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:  # noqa: S310 - http(s) checked above
            declared = response.headers.get("Content-Length")
            size = 0
            while chunk := response.read(1 << 20):
                size += len(chunk)
                if size > MAX_BYTES:
                    raise ImageLoadError(f"download larger than {MAX_BYTES} bytes")
                out.write(chunk)
            if declared is not None and int(declared) != size:
                raise ImageLoadError(f"truncated download: {size} of {declared} bytes")
        check_file(Path(tmp), expected)
        os.replace(tmp, target)
        return target
    except urllib.error.HTTPError as exc:
        raise ImageLoadError(f"download failed: HTTP {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
        if isinstance(exc, ImageLoadError):
            raise
        raise ImageLoadError(f"download failed: {exc}") from exc
    finally:
        Path(tmp).unlink(missing_ok=True)
