"""Prometheus file service discovery: one JSON file per running model version.

Prometheus re-reads the directory by itself (``file_sd_configs``), so a version deployed by a
release is scraped without a reload, and a stopped one disappears. Files are written atomically
(temp file + rename) so Prometheus never reads half a file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from urllib.parse import urlsplit


class ScrapeTargets:
    def __init__(self, directory: Path | str):
        self.directory = Path(directory)

    def path(self, model: str, version: str) -> Path:
        return self.directory / f"{model}--{version}.json"

    def add(self, model: str, version: str, url: str) -> Path:
        netloc = urlsplit(url).netloc or url
        entry = [{"targets": [netloc], "labels": {"model": model, "version": version}}]
        self.directory.mkdir(parents=True, exist_ok=True)
        final = self.path(model, version)
        tmp = final.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(entry))
        os.replace(tmp, final)
        return final

    def remove(self, model: str, version: str) -> None:
        self.path(model, version).unlink(missing_ok=True)

    def listed(self) -> dict[tuple[str, str], str]:
        out = {}
        for f in sorted(self.directory.glob("*.json")):
            for group in json.loads(f.read_text()):
                labels = group.get("labels", {})
                for target in group.get("targets", []):
                    out[(labels.get("model"), labels.get("version"))] = target
        return out
