"""Where the image sources and caches live.

- :func:`source_root`: the checkout the image is built from (``pyproject.toml``,
  ``constraints.txt``, ``plugins/``, ``images/serving/Dockerfile``).
- :func:`cache_dir`: ``$PADDLE_CANARY_IMAGE_CACHE``, else ``<checkout>/var/cache/images``
  (git-ignored): the base's root file system tarball and the wheelhouses, reused by every test
  session, benchmark and stack on the machine.
"""

from __future__ import annotations

import os
from pathlib import Path

from paddle_canary.images.engine import ImageError

ENV_CACHE = "PADDLE_CANARY_IMAGE_CACHE"
DOCKERFILE = Path("images") / "serving" / "Dockerfile"


def source_root() -> Path:
    for parent in Path(__file__).resolve().parents:
        if (parent / "pyproject.toml").is_file() and (parent / DOCKERFILE).is_file():
            return parent
    raise ImageError("building images needs the paddle-canary source checkout "
                     f"(pyproject.toml and {DOCKERFILE}); this install has none")


def cache_dir() -> Path:
    env = os.environ.get(ENV_CACHE)
    return Path(env) if env else source_root() / "var" / "cache" / "images"
