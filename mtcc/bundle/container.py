"""The bundle: one file holding a compiled model, its manifest and every other member.

The container is an uncompressed POSIX ustar archive written byte for byte the same
from the same members (docs/bundle-format.md): `manifest.json` first, then the
members sorted by name, every header with mtime 0, uid/gid 0, empty owner names and
mode 0644.  A bundle is untrusted input, so `open_bundle` checks everything
(container, manifest, format version, member names, sizes and sha256, TVM version,
CPU features) before any byte of it is executed or unpickled; nothing is pickle.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import re
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from .. import cpu
from ..errors import BadInput, EnvironmentProblem

FORMAT = "mtcc-bundle"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
LIBRARY = "lib/model.so"
PLAN_MEMBER = "plan.json"          # mtcc.bundle.plan, as canonical JSON
SELECTOR_MEMBER = "selector.json"  # tasks -> variants (function, latency table, footprint)
SELECTOR_FORMAT = "mtcc-selector/1"
WEIGHTS_DIR = "weights"            # weights/<const slot name>.npy
VARIANT_SEP = "__v"                # function of variant k of task T: T__v<k>
MAX_MANIFEST_BYTES = 64 << 20
MAX_MEMBER_BYTES = 8 << 30  # refuses absurd headers before reading anything
_CHUNK = 1 << 20
# Short, plain relative paths: fit a ustar name field (no pax headers) and can
# never escape the folder they are written to.
_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]*(/[A-Za-z0-9_][A-Za-z0-9._-]*)*$")
_REQUIRED = {  # manifest field → type, besides format/format_version/members
    "model": dict, "target": dict, "cpu_features": list, "tvm_version": str,
    "inputs": list, "outputs": list, "blocks": list, "variants": list,
}


def canonical_json(value) -> bytes:
    """Sorted keys, fixed separators, ASCII, trailing newline: one byte string per value."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    return (text + "\n").encode()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def check_member_name(name: str) -> str | None:
    """Why `name` is not an acceptable member name, or None when it is."""
    if not isinstance(name, str) or not name:
        return "empty name"
    if name.startswith("/") or "\\" in name:
        return "absolute or non-POSIX path"
    if any(part in ("", ".", "..") for part in name.split("/")):
        return "path with '.', '..' or an empty component"
    if len(name.encode()) > 100 or not _NAME_RE.match(name):
        return "only [A-Za-z0-9._-/] up to 100 bytes, each part starting with a letter, digit or _"
    return None


def make_manifest(*, model_name: str, model_sha256: str, target, inputs: list, outputs: list,
                  blocks: list, variants: list, **extra) -> dict:
    """A manifest for code compiled for `target` (a TVM llvm target): fills in the TVM
    version and the CPU features the target's code may use.  `extra` keys go in as is."""
    import tvm

    from ..target import describe, target_cores, target_mcpu

    return {
        "model": {"name": model_name, "sha256": model_sha256},
        "target": {"string": describe(target), "mcpu": target_mcpu(target), "num_cores": target_cores(target)},
        "cpu_features": cpu.required_features(target),
        "tvm_version": tvm.__version__,
        "inputs": inputs,
        "outputs": outputs,
        "blocks": blocks,
        "variants": variants,
        "library": LIBRARY,
        **extra,
    }


def npy_bytes(array) -> bytes:
    """An array as .npy bytes (never pickle: object arrays are refused)."""
    import numpy as np

    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.ascontiguousarray(array), allow_pickle=False)
    return buf.getvalue()


# ---------------------------------------------------------------- writing

def _tarinfo(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = 0
    info.mode = 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.type = tarfile.REGTYPE
    return info


def seal_manifest(manifest: Mapping, members: Mapping[str, bytes]) -> dict:
    """The manifest as written: format fields, every member's sha256/size, and
    `manifest_sha256`, the hash of the canonical manifest without that field (so a
    flipped byte in the manifest itself is caught too)."""
    sealed = {k: v for k, v in manifest.items() if k not in ("members", "manifest_sha256")}
    sealed["format"] = FORMAT
    sealed["format_version"] = FORMAT_VERSION
    sealed["members"] = {name: {"sha256": sha256(data), "size": len(data)}
                         for name, data in sorted(members.items())}
    sealed["manifest_sha256"] = sha256(canonical_json(sealed))
    return sealed


def _write_container(out, manifest: Mapping, members: Mapping[str, bytes]) -> None:
    for name in members:
        why = check_member_name(name)
        if why or name == MANIFEST:
            raise BadInput(f"bundle member {name!r}: {why or 'reserved name'}")
    missing = [k for k in _REQUIRED if k not in manifest]
    if missing:
        raise BadInput(f"bundle manifest: missing field {missing[0]!r}")
    library = manifest.get("library")
    if library is not None and library not in members:
        raise BadInput(f"bundle manifest: library {library!r} is not among the members")
    manifest_data = canonical_json(seal_manifest(manifest, members))
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in [(MANIFEST, manifest_data), *sorted(members.items())]:
            tar.addfile(_tarinfo(name, len(data)), io.BytesIO(data))


def bundle_bytes(manifest: Mapping, members: Mapping[str, bytes]) -> bytes:
    """The whole container in memory: same manifest and members → same bytes."""
    buf = io.BytesIO()
    _write_container(buf, manifest, members)
    return buf.getvalue()


def write_bundle(path: str | Path, manifest: Mapping, members: Mapping[str, bytes]) -> dict:
    """Writes the bundle atomically (a reader never sees half a file); returns
    {"path", "size", "sha256"} of the file written."""
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise BadInput(f"{path}: cannot write here ({e.strerror})") from None
    try:
        with os.fdopen(fd, "w+b") as f:
            _write_container(f, manifest, members)
            f.flush()
            os.fsync(f.fileno())
            size = f.tell()
            f.seek(0)
            digest = hashlib.file_digest(f, "sha256").hexdigest()
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o644 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return {"path": str(path), "size": size, "sha256": digest}


# ---------------------------------------------------------------- reading

@dataclass
class _Entry:
    offset: int  # of the data in the file
    size: int
    sha256: str


class Bundle:
    """A verified bundle.  Members are read again (and re-hashed) on access, so a file
    swapped after verification is refused rather than trusted."""

    def __init__(self, path: Path, manifest: dict, entries: dict[str, _Entry]):
        self.path = path
        self.manifest = manifest
        self._entries = entries

    @property
    def names(self) -> list[str]:
        return list(self._entries)

    def member(self, name: str) -> bytes:
        entry = self._entries.get(name)
        if entry is None:
            raise BadInput(f"{self.path}: no member {name!r} in the bundle")
        with open(self.path, "rb") as f:
            f.seek(entry.offset)
            data = f.read(entry.size)
        if len(data) != entry.size or sha256(data) != entry.sha256:
            raise BadInput(f"{self.path}: member {name!r} changed after it was verified (sha256 mismatch)")
        return data

    def array(self, name: str):
        """A .npy member as a numpy array (allow_pickle=False)."""
        import numpy as np

        try:
            return np.lib.format.read_array(io.BytesIO(self.member(name)), allow_pickle=False)
        except ValueError as e:
            raise BadInput(f"{self.path}: member {name!r} is not a plain .npy array ({e})") from None

    def json(self, name: str):
        try:
            return json.loads(self.member(name))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise BadInput(f"{self.path}: member {name!r} is not JSON ({e})") from None

    def extract_library(self, directory: str | Path) -> Path:
        """Writes the verified shared library into `directory` (caller's, e.g. a
        TemporaryDirectory) and returns its path, ready for tvm.runtime.load_module.
        Once loaded the file may be deleted: the mapping stays."""
        name = self.manifest.get("library", LIBRARY)
        out = Path(directory) / Path(name).name
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(self.member(name))
        return out


def _bad(path: Path, reason: str) -> BadInput:
    return BadInput(f"{path}: {reason}")


def _read_exact(f, offset: int, size: int, path: Path, what: str) -> bytes:
    f.seek(offset)
    data = f.read(size)
    if len(data) != size:
        raise _bad(path, f"truncated or not an mtcc bundle ({what} ends early)")
    return data


def _hash_range(f, offset: int, size: int, path: Path, name: str) -> str:
    f.seek(offset)
    h, left = hashlib.sha256(), size
    while left:
        chunk = f.read(min(_CHUNK, left))
        if not chunk:
            raise _bad(path, f"truncated or not an mtcc bundle (member {name!r} ends early)")
        h.update(chunk)
        left -= len(chunk)
    return h.hexdigest()


def _scan(f, path: Path, file_size: int) -> dict[str, tarfile.TarInfo]:
    """Every header in order, without extracting anything.  Headers must be canonical
    and padding zero, so (with the sha256 checks) every byte of the file is checked."""
    try:
        tar = tarfile.open(fileobj=f, mode="r:")  # "r:" = uncompressed only
        infos = tar.getmembers()
    except (tarfile.TarError, EOFError, OSError, UnicodeDecodeError) as e:
        raise _bad(path, f"truncated or not an mtcc bundle ({e})") from None
    if not infos or infos[0].name != MANIFEST:
        raise _bad(path, f"not an mtcc bundle (first member is not {MANIFEST})")
    seen: dict[str, tarfile.TarInfo] = {}
    end = 0
    for info in infos:
        why = check_member_name(info.name)
        if why:
            raise _bad(path, f"unsafe member name {info.name!r} ({why})")
        if not info.isreg():
            raise _bad(path, f"member {info.name!r} is not a regular file")
        if info.name in seen:
            raise _bad(path, f"member {info.name!r} appears twice")
        if info.size > MAX_MEMBER_BYTES or info.offset_data + info.size > file_size:
            raise _bad(path, f"truncated or not an mtcc bundle (member {info.name!r} ends early)")
        # Headers must be exactly what the writer makes (no pax/GNU extras, no times or
        # owners), back to back: then the whole file is fixed by names and contents.
        header = _tarinfo(info.name, info.size).tobuf(tarfile.USTAR_FORMAT)
        if info.offset != end or _read_exact(f, info.offset, len(header), path, "header") != header:
            raise _bad(path, f"non-canonical header for member {info.name!r} (not written by mtcc)")
        pad = -info.size % tarfile.BLOCKSIZE
        if _read_exact(f, info.offset_data + info.size, pad, path, "padding").count(0) != pad:
            raise _bad(path, f"corrupt padding after member {info.name!r}")
        seen[info.name] = info
        end = info.offset_data + info.size + pad
    # After the last member: only the end-of-archive zero blocks.  tarfile stops
    # quietly at a damaged header, so whatever follows must be checked here.
    trailer = file_size - end
    if trailer < 2 * tarfile.BLOCKSIZE:
        raise _bad(path, "truncated or not an mtcc bundle (no end-of-archive marker)")
    f.seek(end)
    while trailer:
        chunk = f.read(min(_CHUNK, trailer))
        if chunk.count(0) != len(chunk):
            raise _bad(path, "truncated or not an mtcc bundle (unreadable data after member "
                             f"{infos[-1].name!r})")
        trailer -= len(chunk)
    return seen


def _read_manifest(f, path: Path, info: tarfile.TarInfo) -> dict:
    if info.size > MAX_MANIFEST_BYTES:
        raise _bad(path, f"{MANIFEST} is {info.size} bytes (limit {MAX_MANIFEST_BYTES})")
    data = _read_exact(f, info.offset_data, info.size, path, MANIFEST)
    try:
        manifest = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise _bad(path, f"{MANIFEST} is not valid JSON ({e})") from None
    if not isinstance(manifest, dict):
        raise _bad(path, f"{MANIFEST} is not a JSON object")
    fmt, version = manifest.get("format"), manifest.get("format_version")
    if fmt != FORMAT:
        raise _bad(path, f"not an mtcc bundle (format {fmt!r}, expected {FORMAT!r})")
    if version != FORMAT_VERSION:
        raise _bad(path, f"unknown bundle format version {version!r} (this mtcc reads version "
                         f"{FORMAT_VERSION}); repack it with this mtcc")
    unsealed = {k: v for k, v in manifest.items() if k != "manifest_sha256"}
    if data != canonical_json(manifest) or manifest.get("manifest_sha256") != sha256(canonical_json(unsealed)):
        raise _bad(path, f"{MANIFEST}: sha256 mismatch (the manifest was altered)")
    members = manifest.get("members")
    if not isinstance(members, dict) or not all(
            isinstance(m, dict) and isinstance(m.get("sha256"), str) and isinstance(m.get("size"), int)
            for m in members.values()):
        raise _bad(path, f"{MANIFEST}: 'members' must map names to {{sha256, size}}")
    for key, kind in _REQUIRED.items():
        if not isinstance(manifest.get(key), kind):
            raise _bad(path, f"{MANIFEST}: field {key!r} missing or not a {kind.__name__}")
    return manifest


def open_bundle(path: str | Path, *, check_environment: bool = True) -> Bundle:
    """Opens and verifies a bundle; nothing in it is loaded or executed.

    BadInput (exit 2): not a file, truncated, not a bundle, unknown format version,
    unsafe/missing/extra member, size or sha256 mismatch.  EnvironmentProblem (exit 3):
    built with another TVM version, or this CPU lacks a required feature.
    `check_environment=False` skips those two (for `mtcc inspect` on another machine)."""
    path = Path(path)
    if not path.exists():
        raise _bad(path, "no such file")
    if not path.is_file():
        raise _bad(path, "not a regular file, expected an mtcc bundle")
    file_size = path.stat().st_size
    if file_size == 0:
        raise _bad(path, "empty file, expected an mtcc bundle")
    if file_size % tarfile.BLOCKSIZE:
        raise _bad(path, f"truncated or not an mtcc bundle (size {file_size} is not a multiple of 512)")
    with open(path, "rb") as f:
        infos = _scan(f, path, file_size)
        manifest = _read_manifest(f, path, infos.pop(MANIFEST))
        listed = manifest["members"]
        for name in listed:  # names in the manifest must be as safe as those in the tar
            why = check_member_name(name)
            if why:
                raise _bad(path, f"unsafe member name {name!r} in {MANIFEST} ({why})")
        for name in sorted(listed):
            if name not in infos:
                raise _bad(path, f"member {name!r} is missing")
        for name in infos:
            if name not in listed:
                raise _bad(path, f"member {name!r} is not listed in {MANIFEST}")
        entries = {}
        for name in sorted(listed):
            info, want = infos[name], listed[name]
            if info.size != want["size"]:
                raise _bad(path, f"member {name!r}: size {info.size} != {want['size']} in {MANIFEST}")
            if _hash_range(f, info.offset_data, info.size, path, name) != want["sha256"]:
                raise _bad(path, f"member {name!r}: sha256 mismatch (corrupt or altered)")
            entries[name] = _Entry(info.offset_data, info.size, want["sha256"])
    library = manifest.get("library")
    if library is not None and library not in entries:
        raise _bad(path, f"{MANIFEST}: library {library!r} is not among the members")
    if check_environment:
        check_environment_for(path, manifest)
    return Bundle(path, manifest, entries)


def check_environment_for(path: Path, manifest: dict, have: set[str] | None = None) -> None:
    """EnvironmentProblem unless this TVM and this CPU can run the bundle's code."""
    import tvm

    built, running = manifest["tvm_version"], tvm.__version__
    if built != running:
        # A compiled library is tied to the runtime ABI it was built against.
        raise EnvironmentProblem(f"{path}: built with TVM {built}, this is TVM {running}; "
                                 f"install apache-tvm=={built} or repack the bundle")
    have = cpu.cpu_features() if have is None else have
    missing = cpu.missing_features(manifest["cpu_features"], have)
    if missing:
        mcpu = manifest["target"].get("mcpu", "?")
        detail = "" if have else " (CPU features could not be read: no /proc/cpuinfo flags)"
        raise EnvironmentProblem(f"{path}: this CPU lacks {', '.join(missing)}, required by the bundle's "
                                 f"target {mcpu}{detail}; repack for this CPU (e.g. --target x86-64-v3)")
