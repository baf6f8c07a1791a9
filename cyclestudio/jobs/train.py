"""`cyclestudio train`: train a CycleGAN into a run folder, or resume one exactly."""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from dataclasses import replace
from pathlib import Path
from typing import Any

from cyclestudio.errors import UserError

HELP = "train a translator between two image folders (or --resume a run)"


def _key_value(text: str) -> tuple[str, str]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    key, value = text.split("=", 1)
    return key.strip(), value.strip()


def add_arguments(p: argparse.ArgumentParser) -> None:
    data = p.add_argument_group("data")
    data.add_argument(
        "--a",
        action="append",
        default=[],
        metavar="DIR",
        help="domain A's images (a folder or file; repeat for more)",
    )
    data.add_argument(
        "--b",
        action="append",
        default=[],
        metavar="DIR",
        help="domain B's images (a folder or file; repeat for more)",
    )
    data.add_argument("--a-name", default=None, help="a name for domain A (default: its folder)")
    data.add_argument("--b-name", default=None, help="a name for domain B (default: its folder)")
    data.add_argument("--out", type=Path, help="the run folder to create")
    data.add_argument(
        "--resume",
        type=Path,
        metavar="RUN",
        help="continue a stopped or crashed run exactly where it left off",
    )
    data.add_argument("--size", type=int, default=256, help="training crop size (default 256)")
    data.add_argument(
        "--load-size",
        type=int,
        default=None,
        help="resize before cropping (default: size × 286/256)",
    )
    data.add_argument(
        "--preprocess",
        default="resize_and_crop",
        help="resize_and_crop | crop | scale_width | scale_width_and_crop | none",
    )
    data.add_argument("--no-flip", action="store_true", help="no random horizontal flips")
    data.add_argument("--channels", type=int, default=3, help="3 (RGB) or 1 (greyscale)")
    data.add_argument("--workers", type=int, default=2, help="image-decoding processes (0: inline)")

    arch = p.add_argument_group("architecture")
    arch.add_argument("--generator", default="resnet_9blocks", help="generator plugin name")
    arch.add_argument("--discriminator", default="patchgan", help="discriminator plugin name")
    arch.add_argument(
        "--generator-option",
        type=_key_value,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a generator option (see `plugins list`)",
    )
    arch.add_argument(
        "--discriminator-option",
        type=_key_value,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a discriminator option",
    )

    opt = p.add_argument_group("objective and schedule (the paper's defaults)")
    opt.add_argument("--gan-loss", default="lsgan", help="lsgan | vanilla | hinge | wgangp")
    opt.add_argument("--lambda-cycle", type=float, default=10.0)
    opt.add_argument("--lambda-identity", type=float, default=0.5)
    opt.add_argument("--pool-size", type=int, default=50)
    opt.add_argument("--lr", type=float, default=2e-4, help="generator learning rate")
    opt.add_argument("--lr-d", type=float, default=None, help="discriminator rate (default: --lr)")
    opt.add_argument("--beta1", type=float, default=0.5)
    opt.add_argument("--beta2", type=float, default=0.999)
    opt.add_argument("--lr-policy", default="linear", help="linear | cosine | step")
    opt.add_argument("--epochs", type=int, default=None, help="schedule length (default 200)")
    opt.add_argument(
        "--decay-epochs",
        type=int,
        default=None,
        help="linear decay over the last N epochs (default: half)",
    )
    opt.add_argument("--step-epochs", type=int, default=50, help="step policy: ×0.1 every N")
    opt.add_argument("--batch-size", type=int, default=1)
    opt.add_argument(
        "--iterations",
        type=int,
        default=None,
        help="stop when the run has done N iterations in total",
    )

    run = p.add_argument_group("run")
    run.add_argument("--device", default=None, help="auto | cpu | cuda | cuda:N | mps")
    run.add_argument("--precision", default="fp32", help="fp32 | bf16 | fp16 (mixed, CUDA)")
    run.add_argument("--seed", type=int, default=0)
    run.add_argument("--log-every", type=int, default=10, help="iterations between loss logs")
    run.add_argument("--sample-every", type=int, default=500, help="iterations between samples")
    run.add_argument(
        "--checkpoint-every",
        type=int,
        default=1000,
        help="iterations between checkpoints (also at each epoch's end)",
    )
    run.add_argument(
        "--keep-every-epochs",
        type=int,
        default=5,
        help="keep a checkpoint copy every N epochs (0: only latest)",
    )
    run.add_argument("--events", action="store_true", help="JSON-lines events on stdout")


def config_from_args(args: argparse.Namespace) -> Any:
    """A validated TrainConfig from the command line (a new run)."""
    from cyclestudio.core.config import (
        ArchChoice,
        DataConfig,
        OptimConfig,
        RunConfig,
        TrainConfig,
        validate,
    )
    from cyclestudio.core.networks import check_size
    from cyclestudio.plugins import registry
    from cyclestudio.plugins.checks import preflight

    if not args.a or not args.b:
        missing = "--a" if not args.a else "--b"
        raise UserError(
            f"no {missing} folder given", f"use {missing} DIR with that domain's images"
        )
    reg = registry()
    gen = reg.generator(args.generator)
    dis = reg.discriminator(args.discriminator)
    size = args.size
    load = args.load_size or (size * 286 + 255) // 256
    data = DataConfig(
        a=tuple(str(Path(a).absolute()) for a in args.a),
        b=tuple(str(Path(b).absolute()) for b in args.b),
        a_name=args.a_name or Path(args.a[0]).name or "A",
        b_name=args.b_name or Path(args.b[0]).name or "B",
        size=size,
        load_size=load,
        preprocess=args.preprocess,
        flip=not args.no_flip,
        channels=args.channels,
        workers=args.workers,
    )
    optim = OptimConfig(
        gan_loss=args.gan_loss,
        lambda_cycle=args.lambda_cycle,
        lambda_identity=args.lambda_identity,
        pool_size=args.pool_size,
        lr_g=args.lr,
        lr_d=args.lr_d if args.lr_d is not None else args.lr,
        beta1=args.beta1,
        beta2=args.beta2,
        lr_policy=args.lr_policy,
        epochs=args.epochs or 200,
        decay_epochs=args.decay_epochs
        if args.decay_epochs is not None
        else (args.epochs or 200) // 2,
        step_epochs=args.step_epochs,
        batch_size=args.batch_size,
    )
    run = RunConfig(
        seed=args.seed,
        device=args.device or "auto",
        precision=args.precision,
        log_every=args.log_every,
        sample_every=args.sample_every,
        checkpoint_every=args.checkpoint_every,
        keep_every_epochs=args.keep_every_epochs,
        iterations=args.iterations,
    )
    config = TrainConfig(
        data=data,
        generator=ArchChoice(gen.name, gen.resolve_options(dict(args.generator_option))),
        discriminator=ArchChoice(dis.name, dis.resolve_options(dict(args.discriminator_option))),
        optim=optim,
        run=run,
    )
    validate(config)
    if config.data.preprocess not in ("scale_width", "none"):
        check_size(gen.name, config.generator.options, size, reg)
    elif config.optim.batch_size > 1:
        raise UserError(
            f"--preprocess {config.data.preprocess} keeps each image's shape, so --batch-size "
            "must be 1",
            "use resize_and_crop or crop to batch images",
        )
    # Build both networks and try them before anything is written (plugins/checks.py).
    preflight(gen, config.generator.options, dis, config.discriminator.options,
              channels=config.data.channels, size=config.data.size, device=config.run.device)
    return config


def run(args: argparse.Namespace) -> int:
    from cyclestudio.jobs.events import Control, Events

    control = Control(read_stdin=args.events)
    events = Events(args.events, on_closed=lambda: control.put("stop"))
    control.install_signal_handlers()
    try:
        return Training.from_args(args, events, control).run()
    except UserError:
        raise
    except KeyboardInterrupt:
        events.emit(
            "error",
            message="aborted by a second interrupt; the last checkpoint is kept",
            hint="cyclestudio train --resume RUN continues from it",
            kind="interrupted",
        )
        return 130
    except Exception as exc:  # noqa: BLE001 - the boundary: report, never hang
        import torch

        if isinstance(exc, torch.cuda.OutOfMemoryError) or "out of memory" in str(exc).lower():
            events.emit(
                "error",
                kind="out_of_memory",
                message=f"out of memory: {exc}".splitlines()[0],
                hint="lower --batch-size or --size, pick a smaller generator, or use --precision "
                "bf16; then resume: the last checkpoint is kept",
            )
            return 3
        events.emit(
            "error",
            kind="internal",
            message=f"{type(exc).__name__}: {exc}",
            hint="this is a bug or a broken plugin; the last checkpoint is kept",
            traceback=traceback.format_exc(),
        )
        if not args.events:
            traceback.print_exc()
        return 1


class Training:
    """One training process: the loop, its reports, checkpoints and control commands."""

    def __init__(
        self, run_dir: Path, config: Any, events: Any, control: Any, state: dict[str, Any] | None
    ) -> None:
        self.run_dir, self.config, self.events, self.control = run_dir, config, events, control
        self.state = state

    @classmethod
    def from_args(cls, args: argparse.Namespace, events: Any, control: Any) -> Training:
        from cyclestudio.core.checkpoint import latest_checkpoint, load_checkpoint
        from cyclestudio.core.config import TrainConfig

        if args.resume:
            run_dir = args.resume.absolute()
            checkpoint = latest_checkpoint(run_dir)
            config = TrainConfig.load(run_dir / "config.json")
            changes: dict[str, Any] = {}
            if args.iterations is not None:
                changes["iterations"] = args.iterations
            if args.device:
                changes["device"] = args.device
            config = config.with_run(**changes)
            return cls(run_dir, config, events, control, load_checkpoint(checkpoint))
        if args.out is None:
            raise UserError("no --out folder given", "use --out RUN for the new run folder")
        run_dir = args.out.absolute()
        if (run_dir / "config.json").exists():
            raise UserError(
                f"{run_dir} already holds a run",
                f"continue it with --resume {args.out}, or choose another --out",
            )
        if run_dir.exists() and any(run_dir.iterdir()):
            raise UserError(f"{run_dir} exists and is not empty", "choose a new --out folder")
        return cls(run_dir, config_from_args(args), events, control, None)

    # ------------------------------------------------------------------------
    def run(self) -> int:
        from cyclestudio.core.cyclegan import CycleGAN
        from cyclestudio.core.data import (
            epochs_for,
            find_domains,
            fixed_samples,
            iterations_per_epoch,
            make_loader,
        )
        from cyclestudio.core.networks import pick_device
        from cyclestudio.plugins import registry

        config, run_dir = self.config, self.run_dir
        device = pick_device(config.run.device)
        if config.run.precision == "fp16" and device.type != "cuda":
            # fp16 needs loss scaling, which only CUDA has; bf16 needs none.
            raise UserError(
                f"--precision fp16 needs a CUDA GPU, and this run is on {device}",
                "use --precision bf16 (or fp32)",
            )
        domains = find_domains(config.data)
        for bad in domains.skipped:
            self.events.emit("warning", message=f"skipping {bad.path}: {bad.reason}")
        o = config.optim
        per_epoch = iterations_per_epoch(domains, o.batch_size)
        if (
            self.state is None
            and config.run.iterations
            and o.epochs * per_epoch < config.run.iterations
        ):
            # The schedule must reach the iterations asked for, or the learning rate
            # would sit at 0 for the rest of the run.
            epochs = epochs_for(config.run.iterations, per_epoch)
            if o.epochs != 200:  # set by the user, not the default
                self.events.emit(
                    "warning",
                    message=f"--epochs {o.epochs} is {o.epochs * per_epoch} iterations, fewer "
                    f"than --iterations {config.run.iterations}: the schedule spans {epochs} "
                    f"epochs instead, decaying over the last {epochs // 2}",
                )
            config = replace(config, optim=replace(o, epochs=epochs, decay_epochs=epochs // 2))
        elif self.state is not None and config.run.iterations:
            if o.epochs * per_epoch < config.run.iterations:
                epochs = epochs_for(config.run.iterations, per_epoch)
                self.events.emit(
                    "warning",
                    message=f"extending the schedule from {o.epochs} to {epochs} epochs to reach "
                    f"{config.run.iterations} iterations; the decay phase moves later",
                )
                config = replace(config, optim=replace(o, epochs=epochs))
        self.config = config
        reg = registry()
        multiple = reg.generator(config.generator.name).multiple(config.generator.options)

        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "samples").mkdir(exist_ok=True)
        config.save(run_dir / "config.json")

        model = CycleGAN(config, device, per_epoch, reg)
        iteration = epoch = position = 0
        if self.state is not None:
            model.load_state_dict(self.state)
            iteration = int(self.state["iteration"])
            epoch, position = int(self.state["epoch"]), int(self.state["position"])
            _truncate_metrics(run_dir / "metrics.jsonl", iteration)
            before = self.state.get("images") or {}
            now = {"A": len(domains.a), "B": len(domains.b)}
            if before and before != now:
                self.events.emit(
                    "warning",
                    message=f"the domains changed since the checkpoint (A {before.get('A')} → "
                    f"{now['A']} images, B {before.get('B')} → {now['B']}): training goes on, "
                    "but not as the exact continuation of the interrupted run",
                )
            if position >= per_epoch:  # fewer images now: start the next epoch
                epoch, position = epoch + 1, 0
        total = config.run.iterations or config.optim.epochs * per_epoch
        loader, batches = make_loader(
            domains,
            config.data,
            o.batch_size,
            config.run.seed,
            multiple,
            pin_memory=device.type == "cuda",
        )
        sample_a = fixed_samples(domains.a, config.run.samples, config.data, multiple)
        sample_b = fixed_samples(domains.b, config.run.samples, config.data, multiple)

        self.events.emit(
            "started",
            run=str(run_dir),
            device=str(device),
            iteration=iteration,
            epoch=epoch + 1,
            total_iterations=total,
            iterations_per_epoch=per_epoch,
            images={"A": len(domains.a), "B": len(domains.b)},
            resumed=self.state is not None,
            skipped=[{"path": str(b.path), "reason": b.reason} for b in domains.skipped],
            generator=config.generator.name,
            discriminator=config.discriminator.name,
        )
        loop = _Loop(
            self, model, run_dir, total, per_epoch, {"A": len(domains.a), "B": len(domains.b)}
        )
        loop.iteration, loop.epoch, loop.position = iteration, epoch, position
        if iteration >= total:
            return loop.finish(sample_a, sample_b)

        while loop.iteration < total:
            batches.epoch, batches.start = loop.epoch, loop.position
            for batch in loader:
                model.set_lr(loop.iteration)
                loop.record(model.train_step(batch["A"], batch["B"]))
                loop.position += 1
                if loop.position >= per_epoch:
                    loop.epoch, loop.position = loop.epoch + 1, 0
                outcome = loop.after_step(sample_a, sample_b)
                if outcome is not None:
                    return outcome
                if loop.iteration >= total or loop.position == 0:
                    break
        return loop.finish(sample_a, sample_b)


class _Loop:
    """The bookkeeping around steps: logs, samples, checkpoints, commands."""

    def __init__(
        self,
        training: Training,
        model: Any,
        run_dir: Path,
        total: int,
        per_epoch: int,
        images: dict[str, int],
    ) -> None:
        from cyclestudio.core.health import Health
        from cyclestudio.jobs.events import RateMeter

        self.training, self.model, self.run_dir = training, model, run_dir
        self.events, self.control, self.config = training.events, training.control, training.config
        self.total, self.per_epoch, self.images = total, per_epoch, images
        self.iteration = self.epoch = self.position = 0
        self.sums: dict[str, float] = {}
        self.count = 0
        self.last_sample = -1
        self.health = Health()
        self.meter = RateMeter()
        self.meter.mark(0)
        self.started_at = time.time()

    def record(self, losses: dict[str, float]) -> None:
        import math

        self.iteration += 1
        for k, v in losses.items():
            self.sums[k] = self.sums.get(k, 0.0) + v
        self.count += 1
        if not all(math.isfinite(v) for v in losses.values()):
            bad = ", ".join(k for k, v in losses.items() if not math.isfinite(v))
            raise UserError(
                f"training diverged at iteration {self.iteration}: {bad} is not finite",
                "lower the learning rate (--lr), or try --gan-loss lsgan; resume from the last "
                "checkpoint",
            )

    def after_step(self, sample_a: Any, sample_b: Any) -> int | None:
        run = self.config.run
        it = self.iteration
        self.meter.mark(it)
        if it % run.log_every == 0 or it == self.total:
            self.log()
        if it % run.sample_every == 0:
            self.sample(sample_a, sample_b)
        epoch_end = self.position == 0
        if it % run.checkpoint_every == 0 or (epoch_end and it < self.total):
            self.checkpoint()
            if epoch_end and run.keep_every_epochs and self.epoch % run.keep_every_epochs == 0:
                self.checkpoint(f"epoch_{self.epoch:04d}.pt", announce=False)
        for command in self.control.poll():
            outcome = self.command(command, sample_a, sample_b)
            if outcome is not None:
                return outcome
        return None

    def command(self, command: str, sample_a: Any, sample_b: Any) -> int | None:
        if command == "stop":
            return self.stop()
        if command == "sample":
            self.sample(sample_a, sample_b)
        elif command == "pause":
            return self.pause(sample_a, sample_b)
        elif command == "resume":
            pass  # not paused: nothing to do
        else:
            self.events.emit(
                "warning",
                message=f"unknown command {command!r}",
                hint="use pause, resume, stop or sample",
            )
        return None

    def pause(self, sample_a: Any, sample_b: Any) -> int | None:
        import torch

        device = self.model.device
        if device.type != "cpu":
            # Release the GPU while paused: everything moves to host memory.
            self.model.move_to(torch.device("cpu"))
            if device.type == "cuda":
                torch.cuda.empty_cache()
        self.events.emit("paused", iteration=self.iteration)
        while True:
            command = self.control.wait(0.5)
            if command is None:
                continue
            if command == "resume":
                break
            if command == "stop":
                self.model.move_to(device)
                return self.stop()
            if command == "sample":
                continue
        self.model.move_to(device)
        self.meter.reset()
        self.meter.mark(self.iteration)
        self.events.emit("resumed", iteration=self.iteration)
        return None

    def log(self) -> None:
        if not self.count:
            return
        losses = {k: round(v / self.count, 6) for k, v in self.sums.items()}
        self.sums, self.count = {}, 0
        lr = self.model.opt_G.param_groups[0]["lr"]
        epoch = self.epoch + (1 if self.position else 0)
        line = {
            "iteration": self.iteration,
            "epoch": epoch,
            "losses": losses,
            "lr": lr,
            "time": round(time.time(), 3),
        }
        with open(self.run_dir / "metrics.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps(line) + "\n")
        for warning in self.health.losses(self.iteration, losses):
            self.events.emit("warning", message=warning, iteration=self.iteration)
        rate = self.meter.rate()
        batch = self.config.optim.batch_size
        eta = (self.total - self.iteration) / rate if rate else None
        self.events.emit(
            "progress",
            iteration=self.iteration,
            epoch=epoch,
            total_iterations=self.total,
            losses=losses,
            lr=lr,
            images_per_s=round(rate * batch, 3) if rate else None,
            eta_s=round(eta, 1) if eta is not None else None,
        )

    def sample(self, sample_a: Any, sample_b: Any) -> None:
        from cyclestudio.core.samples import save_grid

        grid = self.model.sample_grid(sample_a, sample_b)
        for warning in self.health.samples(self.iteration, grid):
            self.events.emit("warning", message=warning, iteration=self.iteration)
        rel = f"samples/{self.iteration:08d}.png"
        save_grid(grid, self.run_dir / rel)
        self.last_sample = self.iteration
        self.events.emit("sample", iteration=self.iteration, path=rel)

    def checkpoint(self, name: str = "latest.pt", announce: bool = True) -> str:
        from cyclestudio.core.checkpoint import checkpoint_dir, save_checkpoint

        state = self.model.state_dict()
        state.update(
            config=self.config.to_json(),
            iteration=self.iteration,
            epoch=self.epoch,
            position=self.position,
            images=self.images,
        )
        save_checkpoint(state, checkpoint_dir(self.run_dir) / name)
        rel = f"checkpoints/{name}"
        if announce:
            self.events.emit("checkpoint", iteration=self.iteration, epoch=self.epoch, path=rel)
        return rel

    def stop(self) -> int:
        if self.count:
            self.log()
        rel = self.checkpoint()
        self.events.emit("stopped", iteration=self.iteration, checkpoint=rel)
        return 0

    def finish(self, sample_a: Any, sample_b: Any) -> int:
        if self.count:
            self.log()
        if self.last_sample != self.iteration:
            self.sample(sample_a, sample_b)
        rel = self.checkpoint()
        from cyclestudio.core.modelfile import export_model

        model_rel = export_model(self.run_dir).relative_to(self.run_dir).as_posix()
        self.events.emit("finished", iteration=self.iteration, checkpoint=rel, model=model_rel)
        return 0


def _truncate_metrics(path: Path, iteration: int) -> None:
    """Drop metric lines logged after the checkpoint a run resumes from."""
    if not path.exists():
        return
    kept = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            if json.loads(line)["iteration"] <= iteration:
                kept.append(line)
        except (ValueError, KeyError, TypeError):
            continue  # a line cut short by a crash
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(line + "\n" for line in kept), encoding="utf-8")
    tmp.replace(path)


if __name__ == "__main__":  # pragma: no cover
    sys.exit("run `cyclestudio train`")
