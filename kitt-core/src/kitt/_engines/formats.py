"""Model format detection from file contents, never from file names alone.

Formats: `gguf` (llama.cpp, Ollama), `safetensors` and `pytorch` (Hugging Face weights,
as single files or as a model folder with `config.json`), `ollama` (a `name:tag`
reference that is not a path). Sharded models are recognised in both worlds: GGUF splits
(`x-00001-of-00003.gguf`) and Hugging Face shards listed by a `*.index.json`.

Only headers are read (a few KiB per file), so detection is instant on any model size.
"""

from __future__ import annotations

import json
import re
import struct
import zipfile
from pathlib import Path

import attrs

FORMATS = ("gguf", "safetensors", "pytorch", "ollama")

GGUF_MAGIC = b"GGUF"
GGUF_VERSIONS = (1, 2, 3)
# Any real model has far fewer; larger counts mean a corrupt or non-GGUF header.
_GGUF_MAX_COUNT = 10_000_000
_SAFETENSORS_MAX_HEADER = 100 * 1024 * 1024
_GGUF_SPLIT = re.compile(r"^(?P<stem>.+)-(?P<index>\d{5})-of-(?P<count>\d{5})\.gguf$")
# registry/namespace/name:tag, e.g. llama3.2:1b, library/qwen2:0.5b, hf.co/org/repo:Q4_K_M
_OLLAMA_TAG = re.compile(r"^[A-Za-z0-9][\w.\-]*(?:/[\w.\-]+)*:[\w.\-]+$")
_HF_WEIGHT_SUFFIXES = {".safetensors": "safetensors", ".bin": "pytorch", ".pt": "pytorch",
                       ".pth": "pytorch"}


@attrs.frozen
class ModelInfo:
    """What a model reference turned out to be.

    `format` is None when the model is missing or unreadable; `problem` and `fix` then say
    why and what to do. `path` is what an engine is given: the GGUF file (the first shard
    of a split), the Hugging Face folder, or the single weights file.
    """

    reference: str
    format: str | None
    path: Path | None = None
    files: tuple[Path, ...] = ()
    size_bytes: int = 0
    layout: str = "file"
    """file, sharded, folder or tag."""
    problem: str | None = None
    fix: str | None = None
    alternatives: dict[str, Path] = attrs.field(factory=dict)
    """Other formats the same folder also holds (e.g. a GGUF beside safetensors)."""

    @property
    def ok(self) -> bool:
        return self.format is not None

    def describe(self) -> str:
        if self.format is None:
            return f"unreadable ({self.problem})"
        shards = f", {len(self.files)} files" if len(self.files) > 1 else ""
        return f"{self.format} ({self.layout}{shards})"


class _Unreadable(Exception):
    def __init__(self, problem: str, fix: str):
        super().__init__(problem)
        self.problem = problem
        self.fix = fix


def detect_format(reference: str | Path) -> ModelInfo:
    """Describe the model at `reference` (a file, a folder or an Ollama tag)."""
    ref = str(reference)
    path = Path(ref).expanduser()
    try:
        if path.is_dir():
            return _detect_folder(ref, path)
        if path.is_file():
            return _detect_file(ref, path)
        if path.exists():
            raise _Unreadable("not a regular file or folder", "point at a model file or folder")
    except _Unreadable as exc:
        return ModelInfo(ref, None, path, problem=exc.problem, fix=exc.fix)
    except OSError as exc:
        return ModelInfo(ref, None, path, problem=f"cannot read it: {exc.strerror or exc}",
                         fix="check the file permissions")
    if _looks_like_ollama_tag(ref):
        return ModelInfo(ref, "ollama", None, layout="tag")
    return ModelInfo(ref, None, path, problem="no such file or folder",
                     fix="check the path; KITT does not download models "
                         "(`kitt models tiny DIR` writes a small test model)")


def _looks_like_ollama_tag(ref: str) -> bool:
    return not ref.startswith(("/", ".", "~")) and bool(_OLLAMA_TAG.match(ref))


# -- single files -----------------------------------------------------------------------

def _detect_file(ref: str, path: Path) -> ModelInfo:
    with path.open("rb") as f:
        head = f.read(8)
    if head[:4] == GGUF_MAGIC:
        return _gguf_model(ref, path)
    kind = _weights_kind(path, head)
    if kind is not None:
        files = _hf_shards(path)
        missing = [f.name for f in files if not f.is_file()]
        if missing:
            raise _Unreadable(f"sharded {kind} model is missing: {', '.join(missing)}",
                              "download every shard into the same folder")
        return ModelInfo(ref, kind, path, files, _total_size(files),
                         "sharded" if len(files) > 1 else "file")
    if not head:
        raise _Unreadable("the file is empty", "re-download or re-convert the model")
    raise _Unreadable("unknown file format (not GGUF, safetensors or a PyTorch checkpoint)",
                      "point at a .gguf file, a safetensors/PyTorch file or a Hugging Face "
                      "model folder")


def _gguf_model(ref: str, path: Path) -> ModelInfo:
    _check_gguf_header(path)
    files: tuple[Path, ...] = (path,)
    layout = "file"
    split = _GGUF_SPLIT.match(path.name)
    if split:
        count = int(split["count"])
        files = tuple(path.with_name(f"{split['stem']}-{i:05d}-of-{count:05d}.gguf")
                      for i in range(1, count + 1))
        missing = [f.name for f in files if not f.is_file()]
        if missing:
            raise _Unreadable(f"split GGUF is missing shard(s): {', '.join(missing)}",
                              "download every shard into the same folder")
        for shard in files[1:]:
            _check_gguf_header(shard)
        # Engines are given the first shard and find the others themselves.
        path, layout = files[0], "sharded"
    return ModelInfo(ref, "gguf", path, files, _total_size(files), layout)


def _check_gguf_header(path: Path) -> None:
    """Magic, version and counts of a GGUF header; raises `_Unreadable` when corrupt."""
    with path.open("rb") as f:
        head = f.read(24)
    fix = "the file is damaged or incomplete: download or convert it again"
    if len(head) < 8 or head[:4] != GGUF_MAGIC:
        raise _Unreadable(f"{path.name}: not a GGUF file (bad magic bytes)", fix)
    (version,) = struct.unpack_from("<I", head, 4)
    if version not in GGUF_VERSIONS:
        raise _Unreadable(f"{path.name}: unsupported GGUF version {version} "
                          f"(known: {', '.join(map(str, GGUF_VERSIONS))})", fix)
    needed = 16 if version == 1 else 24  # v1 has 32-bit counts
    if len(head) < needed:
        raise _Unreadable(f"{path.name}: truncated GGUF header ({len(head)} bytes)", fix)
    fmt = "<II" if version == 1 else "<QQ"
    n_tensors, n_kv = struct.unpack_from(fmt, head, 8)
    if n_tensors > _GGUF_MAX_COUNT or n_kv > _GGUF_MAX_COUNT:
        raise _Unreadable(f"{path.name}: corrupt GGUF header ({n_tensors} tensors, "
                          f"{n_kv} metadata keys)", fix)
    if n_tensors and path.stat().st_size < 24 + 32 * n_tensors:
        raise _Unreadable(f"{path.name}: truncated GGUF file ({path.stat().st_size} bytes "
                          f"for {n_tensors} tensors)", fix)


def _weights_kind(path: Path, head: bytes) -> str | None:
    """safetensors, pytorch, or None when `head` is neither."""
    if len(head) == 8:
        (header_len,) = struct.unpack("<Q", head)
        if 2 <= header_len <= _SAFETENSORS_MAX_HEADER:
            with path.open("rb") as f:
                f.seek(8)
                header = f.read(header_len)
            if header[:1] == b"{":
                if len(header) < header_len:
                    raise _Unreadable(f"{path.name}: truncated safetensors header",
                                      "download or convert the file again")
                try:
                    json.loads(header)
                except ValueError:
                    raise _Unreadable(f"{path.name}: corrupt safetensors header",
                                      "download or convert the file again") from None
                return "safetensors"
    if head[:4] == b"PK\x03\x04":
        try:
            with zipfile.ZipFile(path) as archive:
                names = archive.namelist()
        except zipfile.BadZipFile:
            raise _Unreadable(f"{path.name}: corrupt zip archive (PyTorch checkpoint?)",
                              "download or save the checkpoint again") from None
        if any(name.endswith("data.pkl") for name in names):
            return "pytorch"
        return None
    # Legacy (pre-1.6) torch.save files are plain pickles: protocol 2+ opcode first.
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return "pytorch"
    return None


def _hf_shards(path: Path) -> tuple[Path, ...]:
    """All shards of `model-00001-of-00002.safetensors`-style files, else just `path`."""
    match = re.match(r"^(?P<stem>.+)-(\d{5})-of-(?P<count>\d{5})(?P<ext>\.\w+)$", path.name)
    if not match:
        return (path,)
    count = int(match["count"])
    return tuple(path.with_name(f"{match['stem']}-{i:05d}-of-{count:05d}{match['ext']}")
                 for i in range(1, count + 1))


# -- folders ----------------------------------------------------------------------------

def _detect_folder(ref: str, folder: Path) -> ModelInfo:
    entries = sorted(p for p in folder.iterdir() if p.is_file())
    if not entries:
        raise _Unreadable("the folder is empty", "point at a folder holding the model files")
    ggufs = [p for p in entries if _has_magic(p, GGUF_MAGIC)]
    gguf_info = _pick_gguf(ref, ggufs) if ggufs else None
    alternatives = {"gguf": gguf_info.path} if gguf_info and gguf_info.path else {}
    if (folder / "config.json").is_file():
        hf = _hf_folder(ref, folder, entries, alternatives)
        if hf is not None:
            return hf
        if gguf_info is None:
            raise _Unreadable("the folder has config.json but no weights "
                              "(*.safetensors, *.bin)", "download the weight files too")
    if gguf_info is not None:
        return gguf_info
    raise _Unreadable("the folder holds no model (no GGUF file, no config.json with weights)",
                      "point at a .gguf file or a Hugging Face model folder")


def _has_magic(path: Path, magic: bytes) -> bool:
    try:
        with path.open("rb") as f:
            return f.read(len(magic)) == magic
    except OSError:
        return False


def _pick_gguf(ref: str, ggufs: list[Path]) -> ModelInfo:
    """A folder's GGUF model: the only file, or the first shard of the only split."""
    firsts = [p for p in ggufs if not _GGUF_SPLIT.match(p.name)
              or _GGUF_SPLIT.match(p.name)["index"] == "00001"]  # type: ignore[index]
    # mmproj files (vision projectors) sit beside the language model; they are not it.
    models = [p for p in firsts if "mmproj" not in p.name.lower()] or firsts
    if len(models) != 1:
        names = ", ".join(p.name for p in models) or ", ".join(p.name for p in ggufs)
        raise _Unreadable(f"the folder holds several GGUF models ({names})",
                          "point at one .gguf file")
    info = _gguf_model(ref, models[0])
    return attrs.evolve(info, reference=ref)


def _hf_folder(ref: str, folder: Path, entries: list[Path],
               alternatives: dict[str, Path]) -> ModelInfo | None:
    """A Hugging Face folder: config.json plus safetensors or PyTorch weights."""
    try:
        json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError):
        raise _Unreadable("config.json is not valid JSON",
                          "download config.json again") from None
    for kind, index_name in (("safetensors", "model.safetensors.index.json"),
                             ("pytorch", "pytorch_model.bin.index.json")):
        index = folder / index_name
        if index.is_file():
            files = _index_shards(folder, index)
            for shard in files:
                with shard.open("rb") as f:
                    if _weights_kind(shard, f.read(8)) != kind:
                        raise _Unreadable(f"{shard.name} is not a valid {kind} file",
                                          "download that shard again")
            return ModelInfo(ref, kind, folder, files, _total_size(files), "folder",
                             alternatives=alternatives)
    by_kind: dict[str, list[Path]] = {}
    for entry in entries:
        if entry.suffix in _HF_WEIGHT_SUFFIXES:
            with entry.open("rb") as f:
                kind = _weights_kind(entry, f.read(8))
            if kind is None:
                raise _Unreadable(f"{entry.name} is neither safetensors nor a PyTorch "
                                  "checkpoint", "download that file again")
            by_kind.setdefault(kind, []).append(entry)
    for kind in ("safetensors", "pytorch"):  # safetensors wins when both are present
        if kind in by_kind:
            files = tuple(by_kind[kind])
            return ModelInfo(ref, kind, folder, files, _total_size(files), "folder",
                             alternatives=alternatives)
    return None


def _index_shards(folder: Path, index: Path) -> tuple[Path, ...]:
    try:
        weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
        names = sorted(set(weight_map.values()))
    except (ValueError, KeyError, TypeError, AttributeError):
        raise _Unreadable(f"{index.name} is not a valid shard index",
                          f"download {index.name} again") from None
    missing = [n for n in names if not (folder / n).is_file()]
    if missing:
        raise _Unreadable(f"missing shard(s) listed in {index.name}: {', '.join(missing)}",
                          "download every shard into the folder")
    return tuple(folder / n for n in names)


def _total_size(files: tuple[Path, ...]) -> int:
    return sum(f.stat().st_size for f in files)
