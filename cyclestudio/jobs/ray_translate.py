"""`cyclestudio translate ... --ray [ADDRESS]`: one batch spread over a Ray cluster.

The driver (this process) plans the batch exactly as the local path does (output
names, existing outputs skipped, inputs never overwritten) and reports every outcome
with the same events. The work is a Ray Data pipeline: the planned items (paths only)
flow through a pool of model actors, one per GPU or one per CPU, and each actor
decodes, translates and encodes its items with the local path's own code
(:func:`cyclestudio.jobs.translate.translate_items`) and writes the outputs itself, so
images never travel through Ray's object store, only paths and outcomes do. Inputs and
outputs must therefore be on storage every node can reach (docs/distributed.md).

A file an actor cannot translate comes back as a failed outcome with the reason, like
locally. An actor that dies (out of memory, a crash, a lost node) is restarted by Ray
and its items are run again; items whose worker died every time are then tried one at
a time, and a file that still kills its worker is reported failed by name.

Ray is an optional extra: ``pip install "cyclestudio[ray]"``.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from cyclestudio.errors import UserError
from cyclestudio.jobs.translate import Item, Outcome, Settings

LOCAL = ""  # `--ray` without an address: start a Ray instance on this machine
ITEMS_PER_BLOCK = 8  # items an actor takes at a time (and redoes, if it dies)
RETRIES = 2  # times Ray reruns the items of an actor that died, before we try them singly


def _ray() -> Any:
    try:
        import ray
        import ray.data  # noqa: F401 - the pipeline needs Ray Data, not just Ray
    except ImportError:
        raise UserError("--ray needs Ray, which is not installed",
                        'pip install "cyclestudio[ray]"') from None
    return ray


class _Device:
    """How the app's `started` event names where the batch runs."""

    type = "ray"

    def __init__(self, text: str) -> None:
        self.text = text

    def __str__(self) -> str:
        return self.text


class RayTranslator:
    """A Ray cluster (joined or started) and the model its actors will load.

    Stands in for the local Translator where `translate` needs one: the domain names,
    where the work runs (``device``), and the settings the actors need.
    """

    def __init__(self, model: Path, args: argparse.Namespace) -> None:
        from cyclestudio.core.modelfile import read_info
        from cyclestudio.plugins import registry

        self.args = args
        self.info = read_info(model)  # a bad model file fails here, before Ray starts
        registry().generator(self.info.generator)  # ... and a missing plugin
        model_bytes = _model_bytes(model)
        ray = _ray()
        # Ray prints some of its messages (a worker that died, ...) on the driver's
        # stdout, where the app reads our events: send them to stderr instead.
        self._stdout = sys.stdout
        sys.stdout = _ToStderr(sys.stdout)
        address = args.ray or None
        for name in ("ray", "ray.data"):
            logging.getLogger(name).setLevel(logging.WARNING)
        try:
            ray.init(address=address, include_dashboard=False, log_to_driver=False,
                     logging_level=logging.WARNING, configure_logging=True)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise UserError(f"cannot reach the Ray cluster at {address}: "
                            f"{str(exc).splitlines()[0]}",
                            "check the address (ray://HOST:10001 or HOST:6379), or leave it "
                            "out to start Ray on this machine") from None
        context = ray.data.DataContext.get_current()
        context.execution_options.preserve_order = True  # file events in input order
        context.enable_progress_bars = False
        context.max_errored_blocks = -1  # a dead worker's items are retried, never fatal
        # Every actor fetches the model from the object store (no shared model path
        # needed); held here for as long as actors may be (re)started.
        self.model_ref = ray.put(model_bytes)
        resources = ray.cluster_resources()
        gpus = int(resources.get("GPU", 0))
        device = str(args.device).lower()
        if device.startswith("cuda:") or device == "mps":
            raise UserError(f"--device {args.device} with --ray: each worker takes one GPU of "
                            "its own", "use --device cuda (or auto), or cpu")
        if device == "cuda" and gpus == 0:
            raise UserError("--device cuda: the Ray cluster has no GPUs",
                            "use --device auto or cpu, or add GPU nodes to the cluster")
        self.use_gpus = gpus > 0 and device != "cpu"
        self.actors = gpus if self.use_gpus else max(1, int(resources.get("CPU", 1)))
        kind = "GPU" if self.use_gpus else "CPU"
        where = address or "a local Ray instance"
        self.device = _Device(f"ray: {self.actors} {kind} worker{'s' if self.actors > 1 else ''}"
                              f" on {where}")
        self.compile = False
        self.compile_error: str | None = None

    @property
    def model(self) -> RayTranslator:
        """What the local path calls the loaded model (for its domain names)."""
        return self

    def domain_names(self, direction: str) -> tuple[str, str]:
        """(source domain, target domain) for a direction."""
        a, b = self.info.a_name, self.info.b_name
        return (a, b) if direction == "a2b" else (b, a)

    def done(self) -> None:
        """Give a person's terminal its stdout back for the summary (events keep it away)."""
        if not self.args.events:
            sys.stdout = self._stdout


class _ToStderr:
    """Stands in for sys.stdout: text goes to stderr; the descriptor is still stdout's (so
    the job can still point stdout at the null device when its reader has gone)."""

    def __init__(self, stdout: Any) -> None:
        self._fileno = stdout.fileno

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()

    def fileno(self) -> int:
        return self._fileno()

    def isatty(self) -> bool:
        return False


def _model_bytes(model: Path) -> bytes:
    """The model file's bytes (a run folder or checkpoint is exported to one first)."""
    from cyclestudio.core.modelfile import export_model

    model = Path(model)
    if model.is_file() and model.suffix != ".pt":
        return model.read_bytes()
    with tempfile.TemporaryDirectory(prefix="cyclestudio-ray-") as tmp:
        return export_model(model, Path(tmp) / "model.csmodel").read_bytes()


class ModelActor:
    """One worker of the pool: a loaded translator that translates and writes items."""

    def __init__(self, model: Any, settings: Settings, device: str, precision: str,
                 batch_size: int | None, compile: bool) -> None:
        import ray

        from cyclestudio.core.modelfile import load_translator

        data = ray.get(model[0])  # a reference in a list: fetched here, not by Ray
        if device == "auto":
            device = "cuda" if ray.get_gpu_ids() else "cpu"
        fd, path = tempfile.mkstemp(suffix=".csmodel", prefix="cyclestudio-ray-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            self.translator = load_translator(Path(path), device, precision=precision)
        finally:
            os.unlink(path)
        self.translator.compile = compile
        # As locally: one image at a time on a CPU, where batching measured slower.
        batch_size = batch_size or (1 if self.translator.device.type == "cpu" else 4)
        self.settings = Settings(settings.direction, settings.fmt, settings.quality,
                                 settings.tile, batch_size)

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[Any]]:
        from cyclestudio.jobs.translate import translate_items

        # The driver planned these outputs as absent (or ours to replace); one that exists
        # now was written by a worker that died before it could report: Ray runs its
        # block again here, and the file is replaced rather than reported as a clash.
        items = [Item(Path(s), Path(o), replace=True)
                 for s, o in zip(batch["source"], batch["output"], strict=True)]
        settings = self.settings
        outcomes: list[Outcome] = []
        try:
            translate_items(self.translator, items, settings, outcomes.append)
        except Exception:  # noqa: BLE001 - find the file that raised: go one at a time
            outcomes = []
            for item in items:
                try:
                    translate_items(self.translator, [item], settings, outcomes.append)
                except Exception as exc:  # noqa: BLE001 - this file's failure, by name
                    outcomes.append(Outcome(item.source, None, "failed",
                                            f"{type(exc).__name__}: {exc}".splitlines()[0]))
        return {
            "index": [int(i) for i in batch["index"]],
            "status": [o.status for o in outcomes],
            "output": [str(o.output) if o.output is not None else "" for o in outcomes],
            "reason": [o.reason for o in outcomes],
            "notes": [json.dumps(o.notes) for o in outcomes],
            "code": [o.code for o in outcomes],
        }


def _outcome(item: Item, row: dict[str, Any]) -> Outcome:
    output = str(row["output"])
    return Outcome(item.source, Path(output) if output else None, str(row["status"]),
                   str(row["reason"]), list(json.loads(str(row["notes"]))), str(row["code"]))


def _pipeline(translator: RayTranslator, items: Sequence[Item], indices: Sequence[int],
              settings: Settings, per_block: int) -> Any:
    """A Ray dataset of outcomes for the items at ``indices``."""
    ray = _ray()
    args = translator.args
    rows = [{"index": i, "source": str(items[i].source), "output": str(items[i].output)}
            for i in indices]
    dataset = ray.data.from_items(rows, override_num_blocks=max(1, math.ceil(len(rows)
                                                                          / per_block)))
    resources = {"num_gpus": 1} if translator.use_gpus else {"num_cpus": 1}
    with warnings.catch_warnings():
        # Ray Data has no named parameter for the retries of a dead actor's work (its
        # default retries forever, which a file that kills its worker would make a hang);
        # the generic one it takes is marked deprecated in 2.60.
        warnings.simplefilter("ignore", DeprecationWarning)
        return dataset.map_batches(
            ModelActor, batch_size=per_block, batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=min(translator.actors, len(rows))),
            fn_constructor_kwargs={
                "model": [translator.model_ref], "settings": settings,
                "device": args.device, "precision": args.precision,
                "batch_size": args.batch_size, "compile": args.compile == "on"},
            max_task_retries=RETRIES, **resources)


def translate_plan(
    translator: RayTranslator,
    plan: Iterable[Item | Outcome],
    settings: Settings,
    on_outcome: Callable[[Outcome], None],
    should_stop: Callable[[], bool] = lambda: False,
) -> bool:
    """Translate a planned batch (translate.iter_plan: items, and outcomes decided while
    planning) on the Ray cluster: the skips are reported first, then the items."""
    items: list[Item] = []
    for entry in plan:
        if isinstance(entry, Outcome):
            on_outcome(entry)
        else:
            items.append(entry)
    return translate_items(translator, items, settings, on_outcome, should_stop)


def translate_items(
    translator: RayTranslator,
    items: Sequence[Item],
    settings: Settings,
    on_outcome: Callable[[Outcome], None],
    should_stop: Callable[[], bool] = lambda: False,
) -> bool:
    """Translate ``items`` on the Ray cluster; ``on_outcome`` once per item (input order,
    but items retried after a worker died come last). Returns False if stopped early."""
    try:
        return _translate(translator, items, settings, on_outcome, should_stop)
    finally:
        translator.done()


def _translate(
    translator: RayTranslator,
    items: Sequence[Item],
    settings: Settings,
    on_outcome: Callable[[Outcome], None],
    should_stop: Callable[[], bool],
) -> bool:
    if not items:
        return True
    done: set[int] = set()
    passes = ((range(len(items)), ITEMS_PER_BLOCK), (None, 1))  # then, one at a time
    for indices, per_block in passes:
        todo = [i for i in (indices if indices is not None else range(len(items)))
                if i not in done]
        if not todo:
            break
        try:
            for row in _pipeline(translator, items, todo, settings, per_block).iter_rows():
                index = int(row["index"])
                if index in done:
                    continue
                done.add(index)
                on_outcome(_outcome(items[index], row))
                if should_stop():
                    return False
        except Exception as exc:  # noqa: BLE001 - Ray could not run the pipeline at all
            raise _user_error(exc) from None
    for index in range(len(items)):
        if index not in done:
            on_outcome(Outcome(items[index].source, None, "failed",
                               f"the Ray worker translating it died {RETRIES + 1} times (out of "
                               "memory, or the file crashes the decoder?)"))
    return True


def _user_error(exc: Exception) -> UserError:
    first = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
    return UserError(f"the Ray pipeline failed: {first}",
                     "every node needs cyclestudio (and the model's plugins) installed, and "
                     "the input and output folders at the same paths")
