"""Exported translators (``export --format onnx|torchscript``): names, header, and the seal.

An exported file holds ONE generator (one direction) as a standard graph, so any
runtime can use it with one input and one output. What a consumer needs to use it
is embedded as JSON (:data:`HEADER_KEY`): domain names, direction, input range and
normalisation, size multiple, the generator plugin and its options, cyclestudio's
version. An ONNX file keeps it in the model's ``metadata_props``; a TorchScript file
in its archive as ``extra/cyclestudio.json``.

An ONNX file is also sealed: :data:`DIGEST_KEY` holds the SHA-256 of the whole file
with that value itself blanked, so a changed byte anywhere (weights, graph or
header) is noticed before anything runs.

Neither torch, onnx nor Qt is imported here: the app lists exported files and reads
their headers through this module. The ONNX header is read with a small protobuf
reader that skips over the graph without parsing it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, BinaryIO

from cyclestudio.errors import UserError

FORMAT = "cyclestudio.export"
FORMAT_VERSION = 1
HEADER_KEY = "cyclestudio"
DIGEST_KEY = "cyclestudio.sha256"
UNSEALED = b"u" * 64  # the digest's stand-in while it is computed (same length: a hex SHA-256)
TORCHSCRIPT_HEADER = "cyclestudio.json"  # the extra file in a TorchScript archive

EXTENSIONS = {"csmodel": ".csmodel", "onnx": ".onnx", "torchscript": ".torchscript"}
ONNX_OPSET = 17  # ONNX Runtime since 1.11 (2022), OpenVINO, TensorRT 8.6, onnx.js/ort-web
INPUT_NAME, OUTPUT_NAME = "image", "output"
# How pixels go in and come out, said once for the header and the runtimes.
INPUT = {"name": INPUT_NAME, "layout": "NCHW", "dtype": "float32", "range": [-1.0, 1.0],
         "normalisation": "x = pixel / max_value * 2 - 1 (max_value 255 for 8-bit, 65535 for "
                          "16-bit)", "dynamic": ["batch", "height", "width"]}
OUTPUT = {"name": OUTPUT_NAME, "layout": "NCHW", "dtype": "float32", "range": [-1.0, 1.0],
          "denormalisation": "pixel = (clamp(y, -1, 1) + 1) / 2 * max_value"}


def is_onnx(path: Path | str) -> bool:
    """True for a path named like an ONNX file."""
    return Path(path).suffix.lower() == EXTENSIONS["onnx"]


def is_torchscript(path: Path | str) -> bool:
    """True for a path named like a TorchScript export."""
    return Path(path).suffix.lower() == EXTENSIONS["torchscript"]


def output_paths(source: Path, fmt: str, direction: str, out: Path | None) -> dict[str, Path]:
    """Where an export goes: one path per direction (``both`` for a .csmodel's one file).

    Without ``out`` the files go beside the model (into a run folder, or next to a
    .csmodel). With both directions of an ONNX or TorchScript export, ``out`` names
    the pair: ``s2w.onnx`` gives ``s2w_a2b.onnx`` and ``s2w_b2a.onnx``.
    """
    ext = EXTENSIONS[fmt]
    source = Path(source)
    if out is None:
        if source.is_dir():
            out = source / f"model{ext}"
        elif source.suffix == ".pt":  # RUN/checkpoints/latest.pt
            out = source.parent.parent / f"model{ext}"
        else:
            out = source.with_suffix(ext)
    out = Path(out)
    if out.is_dir():
        out = out / f"model{ext}"
    if out.suffix.lower() != ext:
        out = out.with_name(out.name + ext) if out.suffix == "" else out.with_suffix(ext)
    if fmt == "csmodel":
        return {"both": out}
    directions = ("a2b", "b2a") if direction == "both" else (direction,)
    if len(directions) == 1:
        return {directions[0]: out}
    return {d: out.with_name(f"{out.stem}_{d}{ext}") for d in directions}


def make_header(info: dict[str, Any], direction: str, graph: str, multiple: int,
                **extra: Any) -> dict[str, Any]:
    """The JSON an exported file carries, from a model's info (``ModelInfo.to_json()``)."""
    a, b = str(info.get("a_name", "A")), str(info.get("b_name", "B"))
    source, target = (a, b) if direction == "a2b" else (b, a)
    channels = int(info.get("channels", 3))
    return {
        "format": FORMAT, "format_version": FORMAT_VERSION, "graph": graph,
        "direction": direction, "source_domain": source, "target_domain": target,
        "a_name": a, "b_name": b, "generator": info.get("generator"),
        "options": info.get("options") or {}, "size": info.get("size"),
        "channels": channels, "color": "RGB" if channels == 3 else "L",
        "iteration": info.get("iteration", 0), "size_multiple": int(multiple),
        "input": INPUT, "output": OUTPUT,
        "cyclestudio_version": info.get("cyclestudio_version"), **extra,
    }


def flat_properties(header: dict[str, Any]) -> dict[str, str]:
    """A few header fields as plain strings, for tools that show ONNX metadata (Netron)."""
    return {
        "direction": f"{header['direction']}: {header['source_domain']} → "
                     f"{header['target_domain']}",
        "size_multiple": str(header["size_multiple"]),
        "input": f"{INPUT_NAME}: float32 NCHW {header['color']} in [-1, 1] "
                 "(pixel / max * 2 - 1), height and width multiples of size_multiple",
        "output": f"{OUTPUT_NAME}: float32 NCHW in [-1, 1] ((y + 1) / 2 * max)",
        "generator": f"{header['generator']} {json.dumps(header['options'], sort_keys=True)}",
    }


# -- reading an ONNX file's metadata without onnx -----------------------------------------
_METADATA_FIELD = 14  # ModelProto.metadata_props: repeated StringStringEntryProto


def _varint(f: BinaryIO) -> int:
    shift = value = 0
    while True:
        byte = f.read(1)
        if not byte:
            raise ValueError("the file ends inside a field")
        value |= (byte[0] & 0x7F) << shift
        if byte[0] < 0x80:
            return value
        shift += 7
        if shift > 63:
            raise ValueError("a malformed number")


def _entry(data: bytes) -> tuple[bytes, bytes, int]:
    """(key, value, value's offset) of one serialised StringStringEntryProto."""
    from io import BytesIO

    f = BytesIO(data)
    key, value, offset = b"", b"", 0
    while f.tell() < len(data):
        tag = _varint(f)
        if tag & 7 != 2:
            raise ValueError("a malformed metadata entry")
        n = _varint(f)
        start = f.tell()
        chunk = f.read(n)
        if len(chunk) != n:
            raise ValueError("a metadata entry cut short")
        if tag >> 3 == 1:
            key = chunk
        elif tag >> 3 == 2:
            value, offset = chunk, start
    return key, value, offset


def onnx_metadata(path: Path | BinaryIO) -> tuple[dict[str, str], dict[str, tuple[int, int]]]:
    """An ONNX file's ``metadata_props`` and where each value lies (offset, length).

    Takes a path or an open binary file. Raises ValueError for data that is not a
    well-formed protobuf message.
    """
    if isinstance(path, str | Path):
        with open(path, "rb") as f:
            return onnx_metadata(f)
    f = path
    props: dict[str, str] = {}
    spans: dict[str, tuple[int, int]] = {}
    size = f.seek(0, 2)
    f.seek(0)
    fields = 0
    while f.tell() < size:
        tag = _varint(f)
        number, wire = tag >> 3, tag & 7
        if number == 0:
            raise ValueError("field number 0")
        if wire == 0:
            _varint(f)
        elif wire == 1:
            f.seek(8, 1)
        elif wire == 5:
            f.seek(4, 1)
        elif wire == 2:
            n = _varint(f)
            start = f.tell()
            if start + n > size:
                raise ValueError("the file is cut short")
            if number == _METADATA_FIELD:
                key, value, offset = _entry(f.read(n))
                name = key.decode("utf-8", "replace")
                props[name] = value.decode("utf-8", "replace")
                spans[name] = (start + offset, len(value))
            else:
                f.seek(n, 1)
        else:
            raise ValueError(f"wire type {wire}")
        fields += 1
    if f.tell() != size or fields == 0:
        raise ValueError("the file is cut short")
    return props, spans


def seal(data: bytes) -> bytes:
    """Put the file's digest in place of :data:`UNSEALED` (which must occur exactly once)."""
    if data.count(UNSEALED) != 1:
        raise ValueError("the digest placeholder must occur exactly once")
    digest = hashlib.sha256(data).hexdigest().encode()
    return data.replace(UNSEALED, digest)


def _check_header(header: Any, path: Path) -> dict[str, Any]:
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise UserError(f"{path} is not a cyclestudio export",
                        "give a .onnx file written by `cyclestudio export --format onnx`")
    if int(header.get("format_version", 0)) > FORMAT_VERSION:
        raise UserError(f"{path} was written by a newer cyclestudio "
                        f"({header.get('cyclestudio_version', '?')})",
                        "update cyclestudio to use this file")
    missing = [k for k in ("direction", "a_name", "b_name", "channels", "size_multiple",
                           "generator") if k not in header]
    if header.get("direction") not in ("a2b", "b2a"):
        missing = missing or ["direction"]
    if missing:
        raise UserError(f"{path} has a damaged cyclestudio header (no valid {missing[0]})",
                        "export the model again")
    return header


def _header_from(props: dict[str, str], path: Path) -> dict[str, Any]:
    try:
        text = props.get(HEADER_KEY)
        header = json.loads(text) if text is not None else None
    except ValueError as exc:
        raise UserError(f"{path} has a damaged cyclestudio header ({exc})",
                        "export the model again") from None
    return _check_header(header, path)


def read_onnx_header(path: Path) -> dict[str, Any]:
    """The cyclestudio header of an exported .onnx file (no seal check: for listing)."""
    path = Path(path)
    try:
        props, _ = onnx_metadata(path)
    except FileNotFoundError:
        raise UserError(f"{path} does not exist", "give an exported .onnx file") from None
    except (OSError, ValueError) as exc:
        raise UserError(f"{path} is not a readable ONNX file ({exc})",
                        "the file is damaged or is not ONNX; export it again") from None
    return _header_from(props, path)


def verify_onnx(path: Path) -> tuple[dict[str, Any], bytes]:
    """The header and bytes of an exported .onnx file whose seal holds.

    UserError if the file is not a cyclestudio export or was changed after export.
    The bytes returned are the ones checked, so nothing can change in between.
    """
    from io import BytesIO

    path = Path(path)
    try:
        data = path.read_bytes()
        props, spans = onnx_metadata(BytesIO(data))
    except FileNotFoundError:
        raise UserError(f"{path} does not exist", "give an exported .onnx file") from None
    except (OSError, ValueError) as exc:
        raise UserError(f"{path} is not a readable ONNX file ({exc})",
                        "the file is damaged or is not ONNX; export it again") from None
    header = _header_from(props, path)
    digest = props.get(DIGEST_KEY, "")
    hint = ("export it again with `cyclestudio export MODEL --format onnx`; a file edited "
            "by another tool (even to rename a node) no longer matches what was checked")
    if len(digest) != len(UNSEALED) or DIGEST_KEY not in spans:
        raise UserError(f"{path} has no cyclestudio seal, so it cannot be trusted", hint)
    offset, length = spans[DIGEST_KEY]
    blanked = data[:offset] + UNSEALED + data[offset + length:]
    if hashlib.sha256(blanked).hexdigest() != digest:
        raise UserError(f"{path} was changed after it was exported (its seal does not match)",
                        hint)
    return header, data


def header_domains(header: dict[str, Any]) -> tuple[str, str]:
    """(A, B) domain names from an export header."""
    return str(header.get("a_name") or "A"), str(header.get("b_name") or "B")
