"""Release manifests and Merkle directory trees (DESIGN §3), with strict parsing.

A tree object is canonical JSON ``{"entries": [...]}`` sorted by name, one per directory:

* file: ``{"name", "type": "file", "mode": 420|493, "size", "digest"}``
* dir:  ``{"name", "type": "dir", "mode": 493, "size": <bytes of all files below>, "digest": <tree>}``
* link: ``{"name", "type": "link", "mode": 511, "size": <len of target>, "target": <relative path>}``

Identical subtrees get identical digests, so diff and hydrate skip them by comparing one string.
Parsing refuses anything a writer could not have produced: unknown fields or schema, wrong types,
names that are not single path components, absolute or over-long link targets, absurd sizes,
JSON nested deeper than it can be. Whether a link stays inside the image depends on where its
tree sits (a tree object is shared by every directory with the same content), so that is judged
per position over a whole image, by ``core.model.links``, not here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from core.errors import BadInput
from core.model.digest import canonical_json, digest_bytes, is_digest
from core.model.jsonio import loads as bounded_loads

MODE_FILE = 0o644
MODE_EXEC = 0o755
MODE_DIR = 0o755
MODE_LINK = 0o777
MAX_NAME_BYTES = 255
MAX_TARGET_BYTES = 4095  # PATH_MAX less the NUL: the longest target the kernel stores
#: Directory levels an image may have below its root (publish, verify, export and hydrate refuse more).
MAX_TREE_DEPTH = 256
MAX_TREE_ENTRIES = 1_000_000
MAX_SIZE = 1 << 50
DEFAULT_MAX_MANIFEST_BYTES = 16 << 20
BUILDER_KINDS = ("julia", "python", "command", "tree")


@dataclass(frozen=True, slots=True)
class Entry:
    """One entry of a tree object."""

    name: str
    type: str
    mode: int
    size: int
    digest: str | None = None
    target: str | None = None

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {"name": self.name, "type": self.type, "mode": self.mode, "size": self.size}
        if self.type == "link":
            d["target"] = self.target
        else:
            d["digest"] = self.digest
        return d


def show(value: object, limit: int = 60) -> str:
    """A short, safe rendering of an untrusted value for a message (no recursion into containers)."""
    if isinstance(value, (str, int, float, bool)) or value is None:
        text = repr(value) if not isinstance(value, int) or abs(value) < 10**30 else "a huge integer"
        return text if len(text) <= limit else text[:limit] + "…"
    return f"a JSON {'array' if isinstance(value, list) else 'object' if isinstance(value, dict) else 'value'}"


def check_name(name: object, where: str = "tree") -> str:
    """A single path component: no '/', no NUL, not '.' or '..', UTF-8, at most 255 bytes."""
    if not isinstance(name, str) or name in ("", ".", "..") or "/" in name or "\x00" in name:
        raise BadInput(f"{where}: invalid entry name {show(name)}")
    try:
        encoded = name.encode("utf-8")
    except UnicodeEncodeError:
        raise BadInput(f"{where}: entry name {name!r} is not valid UTF-8") from None
    if len(encoded) > MAX_NAME_BYTES:
        raise BadInput(f"{where}: entry name longer than {MAX_NAME_BYTES} bytes: {name[:40]!r}…")
    return name


def check_link_target(target: object, link_relpath: str, where: str = "tree") -> str:
    """A symlink target as text: relative, non-empty, no NUL, UTF-8, at most 4095 bytes.

    Whether it stays inside the image is a property of its resolved path at its position:
    ``core.model.links.check_links``.
    """
    if not isinstance(target, str) or not target or "\x00" in target or target.startswith("/"):
        raise BadInput(f"{where}: link {link_relpath} has an absolute or invalid target {show(target)}")
    try:
        size = len(target.encode("utf-8"))
    except UnicodeEncodeError:
        raise BadInput(f"{where}: link {link_relpath}: target is not valid UTF-8") from None
    if size > MAX_TARGET_BYTES:
        raise BadInput(f"{where}: link {link_relpath}: target longer than {MAX_TARGET_BYTES} bytes")
    return target


def tree_bytes(entries: list[Entry]) -> bytes:
    """Canonical serialization of a tree object (entries sorted by name)."""
    return canonical_json({"entries": [e.to_json() for e in sorted(entries, key=lambda e: e.name)]})


def _int(value: object, where: str, lo: int = 0, hi: int = MAX_SIZE) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        raise BadInput(f"{where}: expected an integer in [{lo}, {hi}], got {show(value)}")
    return value


def parse_tree(data: bytes, digest: str = "", dirpath: str = "") -> list[Entry]:
    """Strictly parse a tree object's bytes into entries (in stored order, which must be sorted).

    ``dirpath`` (where the tree sits, for messages) does not change the verdict: a tree object is
    the same at every position it is used at.
    """
    where = f"tree {digest[:19]}" if digest else "tree"
    try:
        obj = json.loads(data)  # every value is then checked to be a scalar: nothing nests further
    except (ValueError, UnicodeDecodeError):
        raise BadInput(f"{where}: not valid JSON") from None
    except RecursionError:
        raise BadInput(f"{where}: JSON nested too deeply, refused") from None
    if not isinstance(obj, dict) or set(obj) != {"entries"} or not isinstance(obj["entries"], list):
        raise BadInput(f'{where}: expected {{"entries": [...]}}')
    raw = obj["entries"]
    if len(raw) > MAX_TREE_ENTRIES:
        raise BadInput(f"{where}: more than {MAX_TREE_ENTRIES} entries")
    out: list[Entry] = []
    prev = None
    for e in raw:
        if not isinstance(e, dict):
            raise BadInput(f"{where}: entry is not an object")
        name = check_name(e.get("name"), where)
        if prev is not None and name <= prev:
            raise BadInput(f"{where}: entries not sorted or duplicated at {name!r}")
        prev = name
        kind = e.get("type")
        rel = f"{dirpath}/{name}" if dirpath else name
        if kind == "file":
            if set(e) != {"name", "type", "mode", "size", "digest"}:
                raise BadInput(f"{where}: file entry {rel} has wrong fields")
            if type(e["mode"]) is not int or e["mode"] not in (MODE_FILE, MODE_EXEC):
                raise BadInput(f"{where}: file {rel} has mode {show(e['mode'])}")
            if not is_digest(e["digest"]):
                raise BadInput(f"{where}: file {rel} has a malformed digest")
            out.append(Entry(name, "file", e["mode"], _int(e["size"], f"{where}: {rel} size"), e["digest"]))
        elif kind == "dir":
            if set(e) != {"name", "type", "mode", "size", "digest"} or e["mode"] != MODE_DIR:
                raise BadInput(f"{where}: dir entry {rel} has wrong fields or mode")
            if not is_digest(e["digest"]):
                raise BadInput(f"{where}: dir {rel} has a malformed digest")
            out.append(Entry(name, "dir", MODE_DIR, _int(e["size"], f"{where}: {rel} size"), e["digest"]))
        elif kind == "link":
            if set(e) != {"name", "type", "mode", "size", "target"} or e["mode"] != MODE_LINK:
                raise BadInput(f"{where}: link entry {rel} has wrong fields or mode")
            target = check_link_target(e["target"], rel, where)
            out.append(Entry(name, "link", MODE_LINK, _int(e["size"], f"{where}: {rel} size"), target=target))
        else:
            raise BadInput(f"{where}: entry {rel} has unknown type {show(kind)}")
    return out


# -- release manifests ---------------------------------------------------------------------


@dataclass
class Image:
    """One per-micro-architecture image of a release."""

    arch: str
    root: str
    files: int
    bytes: int
    cpu_target: str


@dataclass
class Release:
    """A verified, parsed release: its id, the exact payload bytes and the fields operators use."""

    id: str
    payload: bytes
    name: str
    label: str
    created: str
    parent: str | None
    builder: dict[str, Any]
    source: dict[str, Any]
    images: dict[str, Image]
    smoke: dict[str, Any] | None
    signed_by: list[str]

    @property
    def packages(self) -> list[dict[str, Any]]:
        return list(self.source.get("packages", []))

    @property
    def total_bytes(self) -> int:
        return sum(i.bytes for i in self.images.values())

    @property
    def total_files(self) -> int:
        return sum(i.files for i in self.images.values())

    def to_json(self) -> dict[str, Any]:
        """The payload fields plus id, as scripts see them."""
        doc: dict[str, Any] = json.loads(self.payload)
        doc["id"] = self.id
        doc["signed_by"] = self.signed_by
        return doc


def build_payload(
    *,
    name: str,
    label: str,
    created: str,
    parent: str | None,
    builder: dict[str, Any],
    source: dict[str, Any],
    images: dict[str, Image],
    smoke: dict[str, Any] | None,
) -> bytes:
    """Serialize a release payload canonically (its sha256 is the release id)."""
    doc = {
        "type": "depot-release",
        "schema": 1,
        "name": name,
        "label": label,
        "created": created,
        "parent": parent,
        "builder": builder,
        "source": source,
        "images": {
            a: {"root": i.root, "files": i.files, "bytes": i.bytes, "cpu_target": i.cpu_target}
            for a, i in sorted(images.items())
        },
        "smoke": smoke,
    }
    parse_payload(canonical_json(doc), "sha256:" + "0" * 64, [])  # refuse to write what we would refuse to read
    return canonical_json(doc)


def _str(doc: dict[str, Any], key: str, where: str, *, optional: bool = False, maxlen: int = 256) -> str | None:
    v = doc.get(key)
    if v is None and optional:
        return None
    if not isinstance(v, str) or len(v) > maxlen or "\x00" in v:
        raise BadInput(f"{where}: field {key!r} must be a string of at most {maxlen} characters")
    return v


def check_release_name(name: str) -> str:
    """Release names: short, printable, no path separators."""
    if not name or len(name) > 128 or any(c in name for c in "/\\\x00\n") or name.strip() != name:
        raise BadInput(f"invalid release name {name!r}")
    return name


def parse_payload(
    payload: bytes, release_id: str, signed_by: list[str], max_bytes: int = DEFAULT_MAX_MANIFEST_BYTES
) -> Release:
    """Strictly parse release payload bytes (already verified) into a ``Release``."""
    where = f"release {release_id[7:19]}"
    if len(payload) > max_bytes:
        raise BadInput(f"{where}: manifest larger than the {max_bytes}-byte limit, refused")
    try:
        doc = bounded_loads(payload, f"{where}: manifest")
    except (ValueError, UnicodeDecodeError):
        raise BadInput(f"{where}: manifest is not valid JSON") from None
    if not isinstance(doc, dict):
        raise BadInput(f"{where}: manifest is not an object")
    if doc.get("type") != "depot-release":
        raise BadInput(f"{where}: not a depot-release manifest (type {doc.get('type')!r})")
    if doc.get("schema") != 1:
        raise BadInput(f"{where}: unsupported manifest schema {doc.get('schema')!r}")
    known = {"type", "schema", "name", "label", "created", "parent", "builder", "source", "images", "smoke"}
    extra = set(doc) - known
    if extra:
        raise BadInput(f"{where}: unknown manifest field(s) {sorted(extra)}")
    name = check_release_name(_str(doc, "name", where, maxlen=128) or "")
    label = _str(doc, "label", where) or ""
    created = _str(doc, "created", where, maxlen=40) or ""
    parent = _str(doc, "parent", where, optional=True, maxlen=71)
    if parent is not None and not is_digest(parent):
        raise BadInput(f"{where}: parent {parent!r} is not a sha256 digest")
    builder = doc.get("builder")
    if not isinstance(builder, dict) or builder.get("kind") not in BUILDER_KINDS:
        raise BadInput(f"{where}: builder must be an object with kind in {BUILDER_KINDS}")
    source = doc.get("source")
    if not isinstance(source, dict):
        raise BadInput(f"{where}: source must be an object")
    files = source.get("files", {})
    if not isinstance(files, dict) or any(not isinstance(k, str) or not is_digest(v) for k, v in files.items()):
        raise BadInput(f"{where}: source.files must map names to digests")
    packages = source.get("packages", [])
    if not isinstance(packages, list):
        raise BadInput(f"{where}: source.packages must be a list")
    for p in packages:
        if (
            not isinstance(p, dict)
            or not isinstance(p.get("name"), str)
            or not isinstance(p.get("version", ""), str)
            or not isinstance(p.get("uuid", ""), str)
        ):
            raise BadInput(f"{where}: malformed package entry {p!r}")
    images_raw = doc.get("images")
    if not isinstance(images_raw, dict) or not images_raw:
        raise BadInput(f"{where}: images must be a non-empty object")
    images: dict[str, Image] = {}
    for arch, img in images_raw.items():
        iwhere = f"{where} image {arch}"
        if not isinstance(arch, str) or not arch or len(arch) > 64 or not all(c.isalnum() or c in "_-" for c in arch):
            raise BadInput(f"{where}: invalid image name {arch!r}")
        if not isinstance(img, dict) or set(img) != {"root", "files", "bytes", "cpu_target"}:
            raise BadInput(f"{iwhere}: expected root, files, bytes, cpu_target")
        if not is_digest(img["root"]):
            raise BadInput(f"{iwhere}: root is not a sha256 digest")
        if not isinstance(img["cpu_target"], str):
            raise BadInput(f"{iwhere}: cpu_target must be a string")
        images[arch] = Image(
            arch, img["root"], _int(img["files"], iwhere), _int(img["bytes"], iwhere), img["cpu_target"]
        )
    smoke = doc.get("smoke")
    if smoke is not None:
        cmd = smoke.get("command") if isinstance(smoke, dict) else None
        if not isinstance(cmd, list) or not cmd or not all(isinstance(c, str) for c in cmd):
            raise BadInput(f"{where}: smoke.command must be a non-empty list of strings")
        _int(smoke.get("timeout_s", 600), f"{where}: smoke.timeout_s", 1, 86400)
    return Release(release_id, payload, name, label, created, parent, builder, source, images, smoke, signed_by)


def release_id_of(payload: bytes) -> str:
    """A release id is the digest of its payload bytes."""
    return digest_bytes(payload)
