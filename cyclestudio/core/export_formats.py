"""Writing a model's generators as standard graphs (ONNX, TorchScript), checked before kept.

Each direction becomes one graph with one input and one output, dynamic in batch,
height and width (any multiple of the generator's size multiple), with the header of
cyclestudio/exports.py embedded. Before a file is written, the graph in memory runs
beside the PyTorch generator on random and real images at two sizes; the largest
difference and the PSNR are reported, and a difference beyond :data:`TOLERANCE` is
an error with nothing written. Both files of ``--direction both`` pass before either
is written.

ONNX goes through PyTorch's TorchScript-based exporter: it writes instance norm as
the standard ``InstanceNormalization`` operator, which ONNX Runtime runs fast and
which the ONNX backend (core/onnx_backend.py) can rewrite to share statistics across
tiles.
"""

from __future__ import annotations

import contextlib
import inspect
import io
import json
import math
import re
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 - the usual name
from torch import Tensor, nn

from cyclestudio import __version__
from cyclestudio.errors import UserError
from cyclestudio.exports import (
    DIGEST_KEY,
    HEADER_KEY,
    INPUT_NAME,
    ONNX_OPSET,
    OUTPUT_NAME,
    TORCHSCRIPT_HEADER,
    UNSEALED,
    flat_properties,
    make_header,
    output_paths,
    seal,
)

TOLERANCE = 1 / 510  # half of one 8-bit level, on the [0, 1] scale of the output image
PARITY_SIDE = 128  # the larger parity image side, where the training size is larger
ONNX_EXTRA_HINT = 'install the ONNX extra: pip install "cyclestudio[onnx]"'


@dataclass(frozen=True)
class ParityCheck:
    """How closely an exported graph matched PyTorch on one image."""

    direction: str
    image: str  # "random" or where the real image came from
    height: int
    width: int
    max_abs_error: float  # on the [0, 1] scale of the output image
    psnr_db: float  # inf where the outputs are identical
    tolerance: float = TOLERANCE

    @property
    def ok(self) -> bool:
        """Within tolerance."""
        return self.max_abs_error <= self.tolerance

    def to_json(self) -> dict[str, Any]:
        """For the `parity` event."""
        return {"direction": self.direction, "image": self.image,
                "size": [self.height, self.width], "max_abs_error": self.max_abs_error,
                "psnr_db": None if math.isinf(self.psnr_db) else round(self.psnr_db, 2),
                "tolerance": self.tolerance, "ok": self.ok}


@dataclass
class Exported:
    """One file written by an export."""

    direction: str  # a2b, b2a, or both (a .csmodel)
    path: Path
    checks: list[ParityCheck] = field(default_factory=list)


def export(
    source: Path, fmt: str, direction: str = "both", out: Path | None = None,
    on_check: Callable[[ParityCheck], None] | None = None, tolerance: float = TOLERANCE,
) -> list[Exported]:
    """Export ``source`` (a run folder, checkpoint or .csmodel) as ``fmt``; return the files."""
    from cyclestudio.core.modelfile import EXTENSION, export_model, load_model, write_bytes_atomic

    source = Path(source)
    if not source.exists():
        raise UserError(f"{source} does not exist", "give a run folder or a .csmodel file")
    if source.suffix.lower() in (".onnx", ".torchscript"):
        raise UserError(f"{source.name} is already an export",
                        "export from the run folder or .csmodel it came from")
    if fmt == "csmodel":
        if direction != "both":
            raise UserError("a .csmodel always holds both directions",
                            "leave out --direction, or export --format onnx|torchscript")
        if source.suffix == EXTENSION:
            raise UserError(f"{source} is already a .csmodel",
                            "copy the file, or export it --format onnx|torchscript")
        return [Exported("both", export_model(source, out))]
    if fmt == "onnx":
        _require_onnx()
    model = load_model(source, "cpu")
    info = model.info
    label = _plugin_label(info.generator)
    files = output_paths(source, fmt, direction, out)
    done: list[tuple[Exported, bytes]] = []
    for d, path in files.items():
        net = model.generator(d).float().eval()
        header = make_header(info.to_json(), d, fmt, model.multiple,
                             torch_version=torch.__version__.split("+")[0],
                             **({"opset": ONNX_OPSET} if fmt == "onnx" else {}))
        if fmt == "onnx":
            data = onnx_graph(net, info.channels, model.multiple, header, label)
            run = _onnx_runner(data)
        else:
            data = torchscript_graph(net, info.channels, model.multiple, header, label)
            run = _torchscript_runner(data)
        inputs = _parity_inputs(source, info, model.multiple, "a" if d == "a2b" else "b")
        checks = parity(net, run, inputs, d, tolerance)
        for check in checks:
            if on_check is not None:
                on_check(check)
        bad = [c for c in checks if not c.ok]
        if bad:
            worst = max(bad, key=lambda c: c.max_abs_error)
            raise UserError(
                f"the {fmt} graph of {label} ({d}) does not match PyTorch: max |Δ| "
                f"{worst.max_abs_error:.2e} on the {worst.image} {worst.width}×{worst.height} "
                f"image (tolerance {tolerance:.1e}); nothing was written",
                "the plugin may use an operation the exporter translates differently; "
                "try the other --format, or report it to the plugin's author")
        done.append((Exported(d, path, checks), data))
    for exported, data in done:  # every direction passed: now write them
        write_bytes_atomic(exported.path, data)
    return [e for e, _ in done]


# -- graphs ----------------------------------------------------------------------------
def _require_onnx() -> None:
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError as exc:
        raise UserError(f"exporting to ONNX needs the onnx and onnxruntime packages "
                        f"({exc.name} is missing)", ONNX_EXTRA_HINT) from None


def _plugin_label(generator: str) -> str:
    """'the generator 'name' (plugin source)' for messages."""
    from cyclestudio.plugins.discovery import registry

    try:
        spec = registry().generator(generator)
    except UserError:
        return f"the generator '{generator}'"
    plugin = getattr(spec, "plugin", "") or getattr(spec, "source", "")
    return f"the generator '{generator}' (plugin {plugin})" if plugin else (
        f"the generator '{generator}'")


def trace_side(multiple: int) -> int:
    """The side of the example image a graph is traced with (its sizes stay dynamic)."""
    return max(multiple, -(-48 // multiple) * multiple)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Exporters warn a lot about tracing; the parity check is what tells if it worked."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            yield


_OPERATOR = re.compile(r"\b((?:aten|prim|onnx|quantized)::[A-Za-z0-9_.]+)")


def _cannot_export(fmt: str, label: str, exc: BaseException) -> UserError:
    text = str(exc)
    match = _OPERATOR.search(text)
    first = text.strip().splitlines()[0][:200] if text.strip() else type(exc).__name__
    if match:
        where = f"it uses {match.group(1)}, which " + (
            f"ONNX opset {ONNX_OPSET} cannot express" if fmt == "onnx"
            else "TorchScript cannot trace")
    else:
        where = f"{type(exc).__name__}: {first}"
    other = "torchscript" if fmt == "onnx" else "onnx"
    return UserError(f"{label} cannot be exported to {fmt}: {where}",
                     f"replace that operation in the plugin, or try --format {other}; "
                     "the .csmodel works with cyclestudio as it is")


def onnx_graph(net: nn.Module, channels: int, multiple: int, header: dict[str, Any],
               label: str = "the generator") -> bytes:
    """One generator as a sealed ONNX model with the header in its metadata."""
    import onnx

    side = trace_side(multiple)
    example = torch.rand(1, channels, side, side) * 2 - 1
    dims = {0: "batch", 2: "height", 3: "width"}
    kwargs: dict[str, Any] = {}
    if "dynamo" in inspect.signature(torch.onnx.export).parameters:
        # The TorchScript-based exporter: standard InstanceNormalization nodes, no onnxscript.
        kwargs["dynamo"] = False
    buffer = io.BytesIO()
    try:
        with _quiet(), torch.no_grad():
            torch.onnx.export(net, (example,), buffer, opset_version=ONNX_OPSET,
                              input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                              dynamic_axes={INPUT_NAME: dims, OUTPUT_NAME: dims},
                              do_constant_folding=True, **kwargs)
    except Exception as exc:  # noqa: BLE001 - the exporter's errors have many types
        raise _cannot_export("onnx", label, exc) from None
    model = onnx.load_from_string(buffer.getvalue())
    model.producer_name, model.producer_version = "cyclestudio", __version__
    model.graph.name = f"{header['generator']}_{header['direction']}"
    model.doc_string = (f"cyclestudio generator {header['source_domain']} → "
                        f"{header['target_domain']} ({header['generator']}); input and "
                        "output in [-1, 1], see the metadata")
    del model.metadata_props[:]
    props = {**flat_properties(header), HEADER_KEY: json.dumps(header, sort_keys=True),
             DIGEST_KEY: UNSEALED.decode()}
    for key, value in props.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(model)
    return seal(model.SerializeToString())


def torchscript_graph(net: nn.Module, channels: int, multiple: int, header: dict[str, Any],
                      label: str = "the generator") -> bytes:
    """One generator traced to TorchScript, the header as ``extra/cyclestudio.json``."""
    side = trace_side(multiple)
    example = torch.rand(1, channels, side, side) * 2 - 1
    buffer = io.BytesIO()
    try:
        with _quiet(), torch.no_grad():
            traced = torch.jit.trace(net, example, check_trace=False)
            torch.jit.save(traced, buffer,
                           _extra_files={TORCHSCRIPT_HEADER: json.dumps(header, sort_keys=True)})
    except Exception as exc:  # noqa: BLE001 - tracing fails in many ways
        raise _cannot_export("torchscript", label, exc) from None
    return buffer.getvalue()


def _onnx_runner(data: bytes) -> Callable[[np.ndarray], np.ndarray]:
    import onnxruntime as ort

    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    return lambda x: session.run([OUTPUT_NAME], {INPUT_NAME: x})[0]


def _torchscript_runner(data: bytes) -> Callable[[np.ndarray], np.ndarray]:
    with _quiet():
        module = torch.jit.load(io.BytesIO(data), map_location="cpu")

    def run(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return module(torch.from_numpy(x)).numpy()

    return run


# -- parity -------------------------------------------------------------------------------
def parity_sizes(size: int, multiple: int) -> list[tuple[int, int]]:
    """Two (height, width): square at the training size (capped) and a wider, lower one."""
    m = max(1, multiple)

    def fit(side: int) -> int:
        return max(m, -(-side // m) * m)

    side = fit(min(size, PARITY_SIDE))
    return [(side, side), (fit(max(side // 2, 32)), fit(side + side // 2))]


def _parity_inputs(source: Path, info: Any, multiple: int, domain: str
                   ) -> list[tuple[str, Tensor]]:
    """(label, (2, C, H, W) batch of a random and a real image in [-1, 1]) per size."""
    real, where = _real_image(source, info, domain)
    generator = torch.Generator().manual_seed(0)
    batches = []
    for h, w in parity_sizes(int(info.size), multiple):
        random = torch.rand(1, info.channels, h, w, generator=generator) * 2 - 1
        image = F.interpolate(real, size=(h, w), mode="bilinear", antialias=True,
                              align_corners=False).clamp(-1, 1)
        batches.append((where, torch.cat([random, image])))
    return batches


def _real_image(source: Path, info: Any, domain: str) -> tuple[Tensor, str]:
    """A real image of the run's source domain (its training data), else a generated scene."""
    from cyclestudio.core.imagecodec import BadImage, read_picture
    from cyclestudio.core.imagescan import list_images
    from cyclestudio.runfolder import RunFolder

    run = source if source.is_dir() else source.parent.parent if source.suffix == ".pt" else None
    paths: Any = []
    if run is not None:
        paths = RunFolder(run).read_config().get("data", {}).get(domain) or []
    for given in paths if isinstance(paths, list | tuple) else []:
        given = Path(given)
        candidates = list_images(given)[:3] if given.is_dir() else [given]
        for path in candidates:
            try:
                pixels = read_picture(path, info.channels).pixels
            except (BadImage, OSError):
                continue
            scale = 65535 if pixels.dtype == np.uint16 else 255
            x = torch.from_numpy(pixels.astype(np.float32) / scale * 2 - 1)
            x = x.reshape(pixels.shape[0], pixels.shape[1], -1).permute(2, 0, 1)[None]
            return x, f"real ({path.name})"
    from cyclestudio.core.demo import scene

    image = torch.from_numpy(scene(7, 128).astype(np.float32)).permute(2, 0, 1)[None] * 2 - 1
    if info.channels == 1:
        image = image.mean(1, keepdim=True)
    return image, "real (a generated scene)"


def parity(net: nn.Module, run: Callable[[np.ndarray], np.ndarray],
           inputs: list[tuple[str, Tensor]], direction: str,
           tolerance: float = TOLERANCE) -> list[ParityCheck]:
    """Compare the exported graph (``run``) with ``net`` on every batch of ``inputs``."""
    checks = []
    for where, batch in inputs:
        with torch.no_grad():
            expected = net(batch).clamp(-1, 1).numpy()
        got = np.clip(run(np.ascontiguousarray(batch.numpy())), -1, 1)
        if got.shape != expected.shape:
            raise UserError(f"the exported graph gives {got.shape[2:]} for a "
                            f"{batch.shape[2:]} input, PyTorch {expected.shape[2:]}",
                            "the plugin's network does not export with dynamic sizes")
        for i in range(batch.shape[0]):
            label = "random" if i == 0 else where
            diff = (got[i].astype(np.float64) - expected[i]) / 2  # to the [0, 1] scale
            mse = float(np.mean(diff * diff))
            checks.append(ParityCheck(
                direction, label, int(batch.shape[2]), int(batch.shape[3]),
                float(np.abs(diff).max()), math.inf if mse == 0 else -10 * math.log10(mse),
                tolerance))
    return checks
