"""ONNX Runtime as a translation backend, with the PyTorch path's tiling and shared statistics.

:class:`OnnxTranslator` is a :class:`~cyclestudio.core.translate.Translator` whose
passes run in ONNX Runtime: padding, tiling, blending, the out-of-memory retries and
file handling are the PyTorch path's own code. Only a pass of the network differs.

Shared instance-norm statistics: an exported file is a plain generator (one input,
one output, standard ``InstanceNormalization`` nodes), so any runtime can use it. For
a tiled image this module derives two variants of that graph in memory, once, when
an image first needs tiles:

- *record*: the same graph with every norm's input mean and variance as extra outputs;
- *apply*: every ``InstanceNormalization`` replaced by ``x * a + b`` with
  ``a = scale / sqrt(var + eps)`` and ``b = bias - mean * a``, where mean and var are
  extra inputs: exactly what core/shared_norm.py does in PyTorch.

The whole (or downscaled) image goes through *record*; its tiles through *apply*
with the recorded statistics.

Needs the optional extra: ``pip install "cyclestudio[onnx]"`` (onnx and onnxruntime).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from cyclestudio.core.devices import available_memory
from cyclestudio.core.modelfile import ModelInfo
from cyclestudio.core.tiling import pad_to_multiple
from cyclestudio.core.translate import Translator
from cyclestudio.errors import UserError
from cyclestudio.exports import INPUT_NAME, OUTPUT_NAME, is_onnx, is_torchscript, verify_onnx

EXTRA_HINT = 'install the optional extra: pip install "cyclestudio[onnx]"'
NORM_OP = "InstanceNormalization"


def require_onnxruntime() -> Any:
    """The onnxruntime module, or a UserError saying how to install it."""
    try:
        import onnx  # noqa: F401 - the statistics variants are built with it
        import onnxruntime
    except ImportError as exc:
        raise UserError(f"running an ONNX model needs ONNX Runtime ({exc.name} is not "
                        "installed)", EXTRA_HINT) from None
    return onnxruntime


def onnxruntime_installed() -> bool:
    """True where the onnx extra is installed."""
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in ("onnx", "onnxruntime"))


def choose_backend(model: Path, backend: str = "auto") -> str:
    """``torch`` or ``onnxruntime`` for a model path and a ``--backend`` choice.

    auto: ONNX Runtime for a .onnx file, PyTorch for everything else: on a CPU the two
    were not told apart (ONNX Runtime used more memory; benchmarks/README.md), and
    PyTorch runs on every device without an export first.
    """
    model = Path(model)
    if is_torchscript(model):
        raise UserError(f"{model.name} is a TorchScript export, for deploying elsewhere",
                        "translate with the .csmodel or run folder it came from, or an "
                        "exported .onnx")
    if backend not in ("auto", "torch", "onnxruntime"):
        raise UserError(f"unknown backend {backend!r}", "use auto, torch or onnxruntime")
    if is_onnx(model):
        if backend == "torch":
            raise UserError(f"{model.name} is an ONNX graph, which runs with ONNX Runtime",
                            "use --backend onnxruntime (or auto), or translate with the "
                            ".csmodel or run folder it was exported from")
        return "onnxruntime"
    return "torch" if backend == "auto" else backend


# -- the graphs --------------------------------------------------------------------------
class OnnxGraphs:
    """The ONNX graphs a translator runs, one per direction, and the model's description.

    Graphs come from an exported file (one direction) or are exported from a PyTorch
    model in memory as they are first needed (``make``).
    """

    def __init__(self, info: ModelInfo, multiple: int, graphs: dict[str, bytes],
                 source: Path, make: Callable[[str], bytes] | None = None) -> None:
        self.info = info
        self.multiple = int(multiple)
        self.graphs = dict(graphs)
        self.source = source
        self._make = make

    @property
    def directions(self) -> tuple[str, ...]:
        """The directions this model can translate."""
        return ("a2b", "b2a") if self._make is not None else tuple(self.graphs)

    def graph(self, direction: str) -> bytes:
        """The serialised graph for ``direction``."""
        self.check(direction)
        if direction not in self.graphs:
            assert self._make is not None
            self.graphs[direction] = self._make(direction)
        return self.graphs[direction]

    def check(self, direction: str) -> None:
        """UserError unless this model translates ``direction``."""
        if direction not in ("a2b", "b2a"):
            raise UserError(f"unknown direction {direction!r}", "use a2b or b2a")
        if direction not in self.directions:
            (only,) = self.directions
            source, target = self.domain_names(only)
            raise UserError(
                f"{self.source.name} translates {only} ({source} → {target}) only",
                f"leave out --direction (or give {only}), or export the other direction: "
                "cyclestudio export MODEL --format onnx --direction "
                + ("b2a" if only == "a2b" else "a2b"))

    def domain_names(self, direction: str) -> tuple[str, str]:
        """(source domain, target domain) names for a direction."""
        a, b = self.info.a_name, self.info.b_name
        return (a, b) if direction == "a2b" else (b, a)


def load_onnx(path: Path) -> OnnxGraphs:
    """An exported .onnx file, its seal checked (UserError if changed or not ours)."""
    path = Path(path)
    header, data = verify_onnx(path)
    try:
        info = ModelInfo(
            generator=str(header["generator"]), options=dict(header.get("options") or {}),
            size=int(header.get("size") or 256), a_name=str(header["a_name"]),
            b_name=str(header["b_name"]), channels=int(header["channels"]),
            iteration=int(header.get("iteration") or 0),
            cyclestudio_version=str(header.get("cyclestudio_version", "?")))
        multiple = int(header["size_multiple"])
    except (KeyError, TypeError, ValueError) as exc:
        raise UserError(f"{path} has a damaged cyclestudio header ({exc})",
                        "export the model again") from None
    return OnnxGraphs(info, multiple, {str(header["direction"]): data}, path)


def graphs_from_model(path: Path) -> OnnxGraphs:
    """A .csmodel or run folder, each direction exported to ONNX when first used.

    The graph is kept in the cache folder under a digest of the generator's weights
    and description, so the next job with the same model starts at once.
    """
    from cyclestudio.core.export_formats import _onnx_runner, onnx_graph, parity
    from cyclestudio.core.modelfile import load_model
    from cyclestudio.exports import make_header

    model = load_model(Path(path), "cpu")

    def make(direction: str) -> bytes:
        net = model.generator(direction).float().eval()
        cached = _cache_path(net, model.info, direction)
        try:
            header, data = verify_onnx(cached)
            return data
        except UserError:
            pass  # not there yet (or damaged): export it again
        header = make_header(model.info.to_json(), direction, "onnx", model.multiple)
        data = onnx_graph(net, model.info.channels, model.multiple, header)
        side = max(model.multiple, -(-64 // model.multiple) * model.multiple)
        x = torch.rand(1, model.info.channels, side, side) * 2 - 1
        if not all(c.ok for c in parity(net, _onnx_runner(data), [("random", x)], direction)):
            raise UserError(f"ONNX Runtime's output for {Path(path).name} does not match "
                            "PyTorch's", "use --backend torch")
        try:
            from cyclestudio.core.modelfile import write_bytes_atomic

            write_bytes_atomic(cached, data)
        except OSError:
            pass  # a read-only cache only costs the export next time
        return data

    return OnnxGraphs(model.info, model.multiple, {}, Path(path), make)


def _cache_path(net: torch.nn.Module, info: ModelInfo, direction: str) -> Path:
    import hashlib
    import json

    from cyclestudio import __version__
    from cyclestudio.paths import cache_dir

    h = hashlib.sha256(json.dumps([info.to_json(), direction, __version__,
                                   torch.__version__], sort_keys=True).encode())
    for name, tensor in sorted(net.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return cache_dir() / "onnx" / f"{h.hexdigest()[:32]}.onnx"


def _norm_nodes(graph: Any) -> list[Any]:
    return [n for n in graph.node if n.op_type == NORM_OP and n.domain in ("", "ai.onnx")]


def _opset(model: Any) -> int:
    return max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")),
               default=1)


def _epsilon(node: Any) -> float:
    return next((a.f for a in node.attribute if a.name == "epsilon"), 1e-5)


def _reduce_mean(helper: Any, opset: int, x: str, out: str, axes: str) -> Any:
    # ReduceMean takes its axes as an attribute up to opset 17, as an input from 18.
    if opset >= 18:
        return helper.make_node("ReduceMean", [x, axes], [out], keepdims=1)
    return helper.make_node("ReduceMean", [x], [out], axes=[2, 3], keepdims=1)


def statistics_names(index: int) -> tuple[str, str]:
    """The names of one norm's mean and variance in the record and apply variants."""
    return f"cyclestudio_norm{index}_mean", f"cyclestudio_norm{index}_var"


def record_variant(data: bytes) -> tuple[bytes, int]:
    """The graph with each instance norm's input mean and variance as extra outputs."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load_from_string(data)
    graph = model.graph
    opset = _opset(model)
    axes = "cyclestudio_axes_hw"
    graph.initializer.append(numpy_helper.from_array(np.array([2, 3], np.int64), axes))
    nodes = []
    count = 0
    for node in graph.node:
        nodes.append(node)
        if node.op_type != NORM_OP or node.domain not in ("", "ai.onnx"):
            continue
        x = node.input[0]
        mean, var = statistics_names(count)
        diff, square = f"{mean}_diff", f"{mean}_square"
        # Right after their norm, so ONNX Runtime can free the norm's input early.
        nodes += [_reduce_mean(helper, opset, x, mean, axes),
                  helper.make_node("Sub", [x, mean], [diff]),
                  helper.make_node("Mul", [diff, diff], [square]),
                  _reduce_mean(helper, opset, square, var, axes)]
        for name in (mean, var):
            graph.output.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, None))
        count += 1
    del graph.node[:]
    graph.node.extend(nodes)
    return model.SerializeToString(), count


def apply_variant(data: bytes) -> bytes:
    """The graph with every instance norm normalising by given means and variances."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load_from_string(data)
    graph = model.graph
    shape = "cyclestudio_per_channel"
    graph.initializer.append(numpy_helper.from_array(np.array([1, -1, 1, 1], np.int64), shape))
    nodes = []
    count = 0
    for node in graph.node:
        if node.op_type != NORM_OP or node.domain not in ("", "ai.onnx"):
            nodes.append(node)
            continue
        x, scale, bias = node.input[0], node.input[1], node.input[2]
        (y,) = node.output
        mean, var = statistics_names(count)
        p = f"cyclestudio_norm{count}"
        eps = f"{p}_eps"
        graph.initializer.append(numpy_helper.from_array(np.array(_epsilon(node), np.float32),
                                                         eps))
        for name in (mean, var):
            graph.input.append(helper.make_tensor_value_info(
                name, TensorProto.FLOAT, [f"{name}_n", f"{name}_c", 1, 1]))
        nodes += [
            helper.make_node("Reshape", [scale, shape], [f"{p}_scale"]),
            helper.make_node("Reshape", [bias, shape], [f"{p}_bias"]),
            helper.make_node("Add", [var, eps], [f"{p}_var_eps"]),
            helper.make_node("Sqrt", [f"{p}_var_eps"], [f"{p}_std"]),
            helper.make_node("Div", [f"{p}_scale", f"{p}_std"], [f"{p}_a"]),
            helper.make_node("Mul", [mean, f"{p}_a"], [f"{p}_mean_a"]),
            helper.make_node("Sub", [f"{p}_bias", f"{p}_mean_a"], [f"{p}_b"]),
            helper.make_node("Mul", [x, f"{p}_a"], [f"{p}_xa"]),
            helper.make_node("Add", [f"{p}_xa", f"{p}_b"], [y]),
        ]
        count += 1
    del graph.node[:]
    graph.node.extend(nodes)
    return model.SerializeToString()


# -- running -------------------------------------------------------------------------------
def _providers(device: str) -> tuple[list[Any], torch.device]:
    ort = require_onnxruntime()
    available = ort.get_available_providers()
    requested = (device or "auto").strip().lower()
    if requested in ("auto", "cuda") or requested.startswith("cuda:"):
        if "CUDAExecutionProvider" in available:
            index = int(requested.split(":")[1]) if ":" in requested else 0
            return ([("CUDAExecutionProvider", {"device_id": index}), "CPUExecutionProvider"],
                    torch.device("cuda", index))
        if requested != "auto":
            raise UserError(f"--device {requested}: this ONNX Runtime has no CUDA support",
                            "use --device cpu, install onnxruntime-gpu, or --backend torch")
    elif requested != "cpu":
        raise UserError(f"--device {requested} is not available with ONNX Runtime",
                        "use --device cpu or cuda, or --backend torch")
    return ["CPUExecutionProvider"], torch.device("cpu")


class OnnxTranslator(Translator):
    """A Translator whose network passes run in ONNX Runtime."""

    backend = "onnxruntime"  # shown in the `started` event ("torch" for a Translator)

    def __init__(self, model: OnnxGraphs, device: str = "auto", precision: str = "auto",
                 memory_budget: int | None = None, **_: Any) -> None:
        # Translator.__init__ prepares torch networks; here there are sessions instead.
        if precision not in ("auto", "fp32"):
            raise UserError(f"--precision {precision} is not available with ONNX Runtime",
                            "the exported graph runs in fp32; use --precision auto or fp32, "
                            "or --backend torch")
        self.providers, self.device = _providers(device)
        self.model = model
        self.info = model.info
        self.multiple = max(1, int(model.multiple))
        self.channels = int(model.info.channels)
        self.dtype = torch.float32
        self.channels_last = False
        try:
            free = available_memory(self.device)
        except Exception:  # noqa: BLE001 - a CUDA runtime without torch's CUDA
            free = 4 << 30
        self.memory_budget = int(memory_budget or min(free // 3, 2 << 30))
        self.compile = False  # torch.compile has nothing to do here
        self._compiled: dict[str, Any] = {}
        self.compile_error: str | None = None
        self.compiled_images = 0
        self._sessions: dict[tuple[str, str], Any] = {}
        self._counts: dict[str, int] = {}
        self._mode: dict[str, str] = {}
        self._stats: dict[str, dict[str, np.ndarray]] = {}
        # Translator._record_statistics asks whether a direction has norms to share.
        self._norms = _NormsByDirection(self)

    @property
    def directions(self) -> tuple[str, ...]:
        """The directions the model can translate."""
        return self.model.directions

    def session(self, direction: str, variant: str = "native") -> Any:
        """The ONNX Runtime session for a direction: native, record or apply."""
        key = (direction, variant)
        if key not in self._sessions:
            ort = require_onnxruntime()
            data = self.model.graph(direction)
            if variant == "record":
                data, self._counts[direction] = record_variant(data)
            elif variant == "apply":
                data = apply_variant(data)
            options = ort.SessionOptions()
            options.log_severity_level = 3  # warnings about unused initialisers are noise
            # As many threads as PyTorch uses (it honours OMP_NUM_THREADS and the CPUs
            # this process may use); ONNX Runtime would count physical cores instead.
            options.intra_op_num_threads = torch.get_num_threads()
            self._sessions[key] = ort.InferenceSession(data, options, providers=self.providers)
        return self._sessions[key]

    def norm_count(self, direction: str) -> int:
        """How many instance norms the direction's graph has."""
        if direction not in self._counts:
            import onnx

            graph = onnx.load_from_string(self.model.graph(direction)).graph
            self._counts[direction] = len(_norm_nodes(graph))
        return self._counts[direction]

    @contextmanager
    def _norm_mode(self, direction: str, mode: str) -> Iterator[None]:
        self._mode[direction] = mode
        try:
            yield
        finally:
            self._mode[direction] = "native"

    def _run(self, direction: str, x: Tensor) -> Tensor:
        """One pass of (N, C, H, W) in [-1, 1] → output in [0, 1] float32, same size."""
        self.model.check(direction)
        x, (top, left, h, w) = pad_to_multiple(x.float().cpu(), self.multiple)
        feed = {INPUT_NAME: np.ascontiguousarray(x.numpy())}
        try:
            y = self._session_run(direction, feed)
        except Exception as exc:
            if not type(exc).__module__.startswith("onnxruntime"):
                raise
            # As a RuntimeError, ONNX Runtime's failure to allocate meets the Translator's
            # out-of-memory recovery (smaller tiles, split batches) like PyTorch's.
            text = str(exc)
            if "allocate memory" in text.lower():
                text = f"out of memory in ONNX Runtime: {text}"
            raise RuntimeError(text) from exc
        out = torch.from_numpy(y)[:, :, top:top + h, left:left + w]
        return out.add_(1).mul_(0.5).clamp_(0, 1)

    def _session_run(self, direction: str, feed: dict[str, np.ndarray]) -> np.ndarray:
        mode = self._mode.get(direction, "native")
        if mode == "record":
            outputs = self.session(direction, "record").run(None, feed)
            y = outputs[0]
            names = [o.name for o in self.session(direction, "record").get_outputs()]
            self._stats[direction] = dict(zip(names[1:], outputs[1:], strict=True))
        elif mode == "apply" and self._stats.get(direction):
            y = self.session(direction, "apply").run(
                [OUTPUT_NAME], {**feed, **self._stats[direction]})[0]
        else:
            y = self.session(direction).run([OUTPUT_NAME], feed)[0]
        return y


class _NormsByDirection(dict):  # type: ignore[type-arg]
    """``translator._norms[direction]``: truthy when that direction has norms to share."""

    def __init__(self, translator: OnnxTranslator) -> None:
        super().__init__()
        self.translator = translator

    def __missing__(self, direction: str) -> list[int]:
        return list(range(self.translator.norm_count(direction)))


def load_onnx_translator(path: Path, device: str = "auto", **kwargs: Any) -> OnnxTranslator:
    """A translator running an exported .onnx file, or a .csmodel/run folder, in ONNX Runtime."""
    require_onnxruntime()
    path = Path(path)
    graphs = load_onnx(path) if is_onnx(path) else graphs_from_model(path)
    return OnnxTranslator(graphs, device, **kwargs)

