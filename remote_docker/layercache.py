"""Each image's layer list, remembered per engine between transfers.

An inventory needs the layers of every image an engine holds, and a docker
client asks its engine for those one image at a time: on a machine with 150
images that is about 90 ms, most of an inventory, paid before a first push can
send its first byte. An image ID is the digest of a config that names its
layers, so the answer for an ID can never change: once asked, it is kept here
(``$XDG_CACHE_HOME/remote-docker/layers-<engine>.json``) and only the IDs an
engine gained since are asked again. Which IDs an engine holds *now* is still
asked every time, so a removed image's layers are never counted as present.

The file is only ever a speed-up: unreadable, foreign or torn, it is ignored
and rewritten; written to a temporary name and renamed, so readers running
at the same time see the old file or the new one.
"""

from __future__ import annotations

import json
import os
import re

from remote_docker import config

LayerMap = dict[str, list[str]]
_ID = re.compile(r"sha256:[0-9a-f]{64}")


def _path(engine: str, env: dict | os._Environ) -> str:
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", engine).strip("_") or "default"
    return os.path.join(config.cache_dir(env), f"layers-{safe}.json")


def _valid(image_id: object, layers: object) -> bool:
    return (isinstance(image_id, str) and bool(_ID.fullmatch(image_id))
            and isinstance(layers, list) and all(isinstance(l, str) for l in layers))


def load(engine: str, env: dict | os._Environ = os.environ) -> LayerMap:
    """What is remembered for ``engine``: image ID → its diff IDs ({} if nothing usable)."""
    try:
        with open(_path(engine, env), encoding="utf-8") as f:
            found = json.load(f)
    except (OSError, ValueError):
        return {}
    if not isinstance(found, dict):
        return {}
    return {k: v for k, v in found.items() if _valid(k, v)}


def save(engine: str, layers: LayerMap, env: dict | os._Environ = os.environ) -> None:
    """Remember ``layers`` (only the IDs the engine holds now, so the file stays small)."""
    config.write_cache_file(_path(engine, env), json.dumps(layers, separators=(",", ":")))
