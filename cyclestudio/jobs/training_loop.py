"""One training process: the loop, its reports, checkpoints and control commands.

:class:`Training` sets a run up (new, resumed, or started again when it never reached
a checkpoint) and holds the run folder's lock while it trains; :class:`StepLoop` is
the bookkeeping around each step: logs, samples, checkpoints, pause and stop.
"""

from __future__ import annotations

import argparse
import math
import shutil
import time
from pathlib import Path
from typing import Any

from cyclestudio.errors import UserError
from cyclestudio.protocol import PAUSE, RESUME, SAMPLE, STOP
from cyclestudio.runfolder import RunFolder


class Training:
    """A run folder, its configuration, and (when resuming) the checkpoint to continue."""

    # One process trains the run; jobs/distributed_training.py has the several-process kind.
    rank, world_size, main = 0, 1, True
    schedule_world_size = 1  # the processes the schedule's iterations are counted for

    def __init__(
        self, run_dir: Path, config: Any, events: Any, control: Any,
        state: dict[str, Any] | None, given: frozenset[str] = frozenset(),
    ) -> None:
        self.run_dir, self.config, self.events, self.control = run_dir, config, events, control
        self.state = state
        self.folder = RunFolder(run_dir)
        self.given = given  # the settings the command line set explicitly

    @classmethod
    def from_args(cls, args: argparse.Namespace, events: Any, control: Any) -> Training:
        """A new run (``--out``) or a resumed one (``--resume``), checked before any write."""
        from cyclestudio import options
        from cyclestudio.core.checkpoint import latest_checkpoint, load_checkpoint
        from cyclestudio.core.config import TrainConfig
        from cyclestudio.jobs.train import config_from_args, refuse_fixed_settings, resumed_config

        given = frozenset(options.given(args, options.TRAIN))
        if args.resume:
            refuse_fixed_settings(args)
            folder = RunFolder(args.resume.absolute())
            if folder.is_run() and not folder.resumable():
                # Killed before its first checkpoint: nothing to continue, so start it
                # again from its own configuration.
                config = resumed_config(args, TrainConfig.load(folder.config))
                events.emit("warning", message=f"{folder.path} has no checkpoint yet: "
                            "starting it again from iteration 0 with its settings")
                return cls(folder.path, config, events, control, None, given)
            checkpoint = latest_checkpoint(folder.path)
            config = resumed_config(args, TrainConfig.load(folder.config))
            return cls(folder.path, config, events, control, load_checkpoint(checkpoint), given)
        if args.out is None:
            raise UserError("no --out folder given", "use --out RUN for the new run folder")
        folder = RunFolder(args.out.absolute())
        if folder.is_run() and folder.resumable():
            raise UserError(f"{folder.path} already holds a run",
                            f"continue it with --resume {args.out}, or choose another --out")
        if folder.path.exists() and not folder.is_run() and any(folder.path.iterdir()):
            raise UserError(f"{folder.path} exists and is not empty", "choose a new --out folder")
        return cls(folder.path, config_from_args(args), events, control, None, given)

    def run(self) -> int:
        """Train under the run folder's lock; record how the process ended."""
        from cyclestudio.atomic import remove_stale_temps

        with self.folder.lock("training"):
            # Ours alone now: a temp file here is what a killed save left behind.
            remove_stale_temps(self.folder.path, recursive=True, owned=True)
            try:
                code = self._train()
            except UserError as error:
                self._record_failure(error.message)
                raise
            except BaseException as exc:
                self._record_failure(f"{type(exc).__name__}: {exc}")
                raise
            return code

    def _record_failure(self, message: str) -> None:
        """Note the failure in status.json if the disk lets us (it may be what failed)."""
        try:
            self.folder.write_status("failed", message=message)
        except (OSError, UserError):
            pass

    def _start_fresh(self) -> None:
        """Clear what an earlier attempt without a checkpoint left (never a checkpoint)."""
        folder = self.folder
        if folder.resumable():
            raise UserError(f"{folder.path} already holds a run",
                            f"continue it with --resume {folder.path}")
        folder.metrics.unlink(missing_ok=True)
        if folder.samples.is_dir():
            shutil.rmtree(folder.samples)

    def _train(self) -> int:
        from dataclasses import replace

        from cyclestudio.core.cyclegan import CycleGAN
        from cyclestudio.core.data import (
            find_domains,
            fixed_samples,
            iterations_per_epoch,
            make_loader,
        )
        from cyclestudio.core.distributed import schedule_world_size
        from cyclestudio.core.schedule import fit_schedule
        from cyclestudio.core.validation import prepare as prepare_validation
        from cyclestudio.plugins import registry

        config, folder = self.config, self.folder
        device = self.device()
        if config.run.precision == "fp16" and device.type != "cuda":
            # fp16 needs loss scaling, which only CUDA has; bf16 needs none.
            raise UserError(
                f"--precision fp16 needs a CUDA GPU, and this run is on {device}",
                "use --precision bf16 (or fp32)")
        reg = registry()
        multiple = reg.generator(config.generator.name).multiple(config.generator.options)
        domains = find_domains(config.data)
        for bad in domains.skipped:
            self.events.emit("warning", message=f"skipping {bad.path}: {bad.reason}")
        domains, validator, validation = prepare_validation(
            config.data, domains, config.run.val_every, multiple)
        # An iteration is one step of the global batch (every process's images); a run
        # resumed with another number of processes keeps its schedule's iterations.
        self.schedule_world_size = schedule_world_size(self.state, self.world_size)
        per_epoch = iterations_per_epoch(domains,
                                         config.optim.batch_size * self.schedule_world_size)
        if self.schedule_world_size != self.world_size:
            self.events.emit("warning", message=self.world_size_note(per_epoch))
        fitted = fit_schedule(config.optim, per_epoch, config.run.iterations,
                              resumed=self.state is not None,
                              epochs_given="epochs" in self.given,
                              decay_given="decay_epochs" in self.given)
        if fitted.warning:
            self.events.emit("warning", message=fitted.warning)
        config = self.config = replace(config, optim=fitted.optim,
                                       run=replace(config.run, world_size=self.world_size))

        if self.main:  # the other processes of a distributed run never write
            if self.state is None:
                self._start_fresh()
            folder.samples.mkdir(parents=True, exist_ok=True)
            config.save(folder.config)
        folder.write_status("running")

        model = CycleGAN(config, device, per_epoch, reg)
        starts = None
        if self.state is None and (config.optim.colour_start or config.optim.sharpness_start):
            from cyclestudio.core.starts import run_starts

            starts = run_starts(model, domains.a, domains.b, config.data, config.run.seed,
                                colour_on=config.optim.colour_start,
                                sharpness_on=config.optim.sharpness_start, multiple=multiple)
            for name, result, branch in (("colour", starts.colour, "pixel_branch"),
                                         ("sharpness", starts.sharpness, "filter_branch")):
                if result is not None and result.no_branch:
                    self.events.emit("warning", message=f"{name} start: {result.note}",
                                     hint=f"choose a resnet generator with {branch}, or turn "
                                          f"the {name} start off (--no-{name}-start)")
        if device.type == "cuda":
            import torch

            torch.backends.cudnn.benchmark = model.speed.benchmark
        iteration = epoch = position = 0
        images = {"A": len(domains.a), "B": len(domains.b)}
        if self.state is not None:
            model.load_state_dict(self.state)
            iteration = int(self.state["iteration"])
            epoch, position = int(self.state["epoch"]), int(self.state["position"])
            folder.truncate_metrics(iteration)
            before = self.state.get("images") or {}
            if before and before != images:
                self.events.emit(
                    "warning",
                    message=f"the domains changed since the checkpoint (A {before.get('A')} → "
                    f"{images['A']} images, B {before.get('B')} → {images['B']}): training goes "
                    "on, but not as the exact continuation of the interrupted run")
            if position >= per_epoch:  # fewer images now: start the next epoch
                epoch, position = epoch + 1, 0
        self.prepare(model)
        total = config.run.iterations or config.optim.epochs * per_epoch
        loader, batches = make_loader(domains, config.data, config.optim.batch_size,
                                      config.run.seed, multiple,
                                      pin_memory=device.type == "cuda", rank=self.rank,
                                      world_size=self.world_size, per_epoch=per_epoch)
        samples = (fixed_samples(domains.a, config.run.samples, config.data, multiple),
                   fixed_samples(domains.b, config.run.samples, config.data, multiple))

        self.events.emit(
            "started", run=str(folder.path), device=str(device), iteration=iteration,
            epoch=epoch + 1, total_iterations=total, iterations_per_epoch=per_epoch,
            images=images, resumed=self.state is not None, world_size=self.world_size,
            skipped=[{"path": str(b.path), "reason": b.reason} for b in domains.skipped],
            generator=config.generator.name, discriminator=config.discriminator.name,
            preset=config.run.preset, validation=validation, speed=model.speed.to_json(),
            colour_start=starts.colour.to_json() if starts and starts.colour else None,
            sharpness_start=(starts.sharpness.to_json()
                             if starts and starts.sharpness else None),
            starts_seconds=round(starts.seconds, 2) if starts else 0.0)
        loop = self.make_loop(model, total, per_epoch, images, samples, validator)
        if self.state is not None:
            loop.best_score = self.state.get("best_score")
        loop.iteration, loop.epoch, loop.position = iteration, epoch, position
        loop.meter.mark(iteration)  # the rate counts this process's iterations only
        loop.last_checkpoint = iteration
        if iteration >= total:
            return loop.finish()

        while loop.iteration < total:
            batches.epoch, batches.start = loop.epoch, loop.position
            for batch in loop.batches(loader):
                model.set_lr(loop.iteration)
                loop.record(model.train_step(batch["A"], batch["B"]))
                loop.position += 1
                if loop.position >= per_epoch:
                    loop.epoch, loop.position = loop.epoch + 1, 0
                outcome = loop.after_step()
                if outcome is not None:
                    return outcome
                if loop.iteration >= total or loop.position == 0:
                    break
        return loop.finish()

    def device(self) -> Any:
        """The torch device this process trains on."""
        from cyclestudio.core.devices import pick_device

        return pick_device(self.config.run.device)

    def prepare(self, model: Any) -> None:
        """Ready the model for this process's training (nothing to do for one process)."""

    def make_loop(self, model: Any, total: int, per_epoch: int, images: dict[str, int],
                  samples: tuple[Any, Any], validator: Any = None) -> StepLoop:
        """The bookkeeping around this process's steps."""
        return StepLoop(self, model, total, per_epoch, images, samples, validator)

    def world_size_note(self, per_epoch: int) -> str:
        """The warning for a run resumed with another number of processes."""
        b, now, then = self.config.optim.batch_size, self.world_size, self.schedule_world_size
        return (f"resuming with {now} process{'es' if now > 1 else ''} where the run started "
                f"with {then}: each iteration now takes {now * b} image(s) instead of "
                f"{then * b} (processes × --batch-size). The schedule keeps its iterations: an "
                f"epoch is still {per_epoch} iterations, now {per_epoch * now * b} images")


class StepLoop:
    """The bookkeeping around steps: logs, samples, checkpoints, commands."""

    def __init__(
        self, training: Training, model: Any, total: int, per_epoch: int,
        images: dict[str, int], samples: tuple[Any, Any], validator: Any = None,
    ) -> None:
        from cyclestudio.core.health import Health
        from cyclestudio.jobs.events import RateMeter

        self.training, self.model, self.folder = training, model, training.folder
        self.events, self.control, self.config = training.events, training.control, training.config
        self.total, self.per_epoch, self.images = total, per_epoch, images
        self.sample_a, self.sample_b = samples
        self.iteration = self.epoch = self.position = 0
        self.sums: dict[str, float] = {}
        self.count = 0
        self.last_sample = -1
        self.health = Health(self.config.optim.gan_loss)
        self.meter = RateMeter()
        self.validator = validator
        self.best_score: float | None = None
        self.last_validation = -1
        self.last_checkpoint = 0

    def batches(self, loader: Any) -> Any:
        """This process's batches, as the loop takes them."""
        return loader

    def record(self, losses: dict[str, float]) -> None:
        """Add one step's losses; a non-finite loss stops the run (see :meth:`diverged`)."""
        self.iteration += 1
        for k, v in losses.items():
            self.sums[k] = self.sums.get(k, 0.0) + v
        self.count += 1
        if not all(math.isfinite(v) for v in losses.values()):
            bad = ", ".join(k for k, v in losses.items() if not math.isfinite(v))
            raise self.diverged(f"{bad} is not finite")

    def diverged(self, what: str) -> UserError:
        """The error that stops a diverged run: nothing more is saved, so the last
        checkpoint (always of finite weights) is where a resume rolls back to, and the
        event suggests halving the learning rates for it."""
        o = self.config.optim
        suggest = {"lr_g": o.lr_g / 2, "lr_d": o.lr_d / 2}
        from cyclestudio.jobs.events import resume_command

        command = (f"{resume_command(self.folder.path)} --lr {suggest['lr_g']:g} "
                   f"--lr-d {suggest['lr_d']:g}")
        return UserError(
            f"training diverged at iteration {self.iteration}: {what}",
            f"the last good checkpoint is at iteration {self.last_checkpoint}; continue from it "
            f"with lower learning rates: {command}",
            kind="diverged", checkpoint_iteration=self.last_checkpoint, suggest=suggest)

    def after_step(self) -> int | None:
        """Log, sample, checkpoint and obey commands as due; an exit code ends the run."""
        run = self.config.run
        it = self.iteration
        self.meter.mark(it)
        if it % run.log_every == 0 or it == self.total:
            self.log()
        if it % run.sample_every == 0:
            self.sample()
        if self.validator is not None and run.val_every and it % run.val_every == 0:
            self.validate()
        epoch_end = self.position == 0
        if it % run.checkpoint_every == 0 or (epoch_end and it < self.total):
            self.checkpoint()
            if epoch_end and run.keep_every_epochs and self.epoch % run.keep_every_epochs == 0:
                self.checkpoint(f"epoch_{self.epoch:04d}.pt", announce=False)
        for command in self.control.poll():
            outcome = self.command(command)
            if outcome is not None:
                return outcome
        return None

    def command(self, command: str) -> int | None:
        """Obey one control line."""
        if command == STOP:
            return self.stop()
        if command == SAMPLE:
            self.sample()
        elif command == PAUSE:
            return self.pause()
        elif command != RESUME:  # resume while not paused: nothing to do
            self.events.emit("warning", message=f"unknown command {command!r}",
                             hint="use pause, resume, stop or sample")
        return None

    def pause(self) -> int | None:
        """Wait for resume or stop, with the GPU released meanwhile."""
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
            if command == RESUME:
                break
            if command == STOP:
                self.model.move_to(device)
                return self.stop()
        self.model.move_to(device)
        self.meter.reset()
        self.meter.mark(self.iteration)
        self.events.emit("resumed", iteration=self.iteration)
        return None

    def log(self) -> None:
        """Write the mean losses since the last log to metrics.jsonl and as a progress event."""
        if not self.count:
            return
        losses = {k: round(v / self.count, 6) for k, v in self.sums.items()}
        self.sums, self.count = {}, 0
        lr = self.model.opt_G.param_groups[0]["lr"]
        epoch = self.epoch + (1 if self.position else 0)
        self.folder.append_metrics({"iteration": self.iteration, "epoch": epoch,
                                    "losses": losses, "lr": lr, "time": round(time.time(), 3)})
        for warning in self.health.losses(self.iteration, losses):
            self.events.emit("warning", message=warning, iteration=self.iteration)
        rate = self.meter.rate()
        batch = self.config.optim.batch_size * self.training.world_size  # every process's
        eta = (self.total - self.iteration) / rate if rate else None
        self.events.emit(
            "progress", iteration=self.iteration, epoch=epoch, total_iterations=self.total,
            losses=losses, lr=lr, images_per_s=round(rate * batch, 3) if rate else None,
            eta_s=round(eta, 1) if eta is not None else None)

    def sample(self) -> None:
        """Save a sample grid (real, translated, reconstructed) and announce it."""
        from cyclestudio.core.samples import save_grid

        grid = self.model.sample_grid(self.sample_a, self.sample_b)
        for warning in self.health.samples(self.iteration, grid):
            self.events.emit("warning", message=warning, iteration=self.iteration)
        rel = self.folder.sample_name(self.iteration)
        save_grid(grid, self.folder.path / rel)
        self.last_sample = self.iteration
        self.events.emit("sample", iteration=self.iteration, path=rel)

    def validate(self) -> None:
        """Translate the held-out images, log the figures, keep the best checkpoint."""
        started = time.perf_counter()
        figures = self.validator.run(self.model)
        seconds = round(time.perf_counter() - started, 3)  # what validation costs the run
        self.last_validation = self.iteration
        self.folder.append_metrics({"iteration": self.iteration, "validation": figures,
                                    "seconds": seconds, "time": round(time.time(), 3)})
        best = self.best_score is None or figures["score"] > self.best_score
        if best:
            self.best_score = figures["score"]
            self.save_best()
        for warning in self.health.validation(self.iteration, figures):
            self.events.emit("warning", message=warning, iteration=self.iteration)
        self.events.emit("validation", iteration=self.iteration, figures=figures, best=best,
                         seconds=seconds)

    def save_best(self) -> None:
        """The generators at the best validation score so far, for export and translation."""
        from cyclestudio.core.checkpoint import save_checkpoint

        nets = self.model.state_dict(generators_only=True)["nets"]
        self.folder.checkpoints.mkdir(parents=True, exist_ok=True)
        save_checkpoint({"config": self.config.to_json(), "iteration": self.iteration,
                         "epoch": self.epoch, "position": self.position, "nets": nets,
                         "best_score": self.best_score, "kind": "best"}, self.folder.best)

    def checkpoint(self, name: str = "latest.pt", announce: bool = True) -> str:
        """Write a checkpoint of everything needed to continue exactly."""
        from cyclestudio.core.checkpoint import save_checkpoint

        if not self.model.finite():
            raise self.diverged("the weights are no longer finite")
        state = self.model.state_dict()
        state.update(config=self.config.to_json(), iteration=self.iteration, epoch=self.epoch,
                     position=self.position, images=self.images, best_score=self.best_score,
                     world_size=self.training.world_size,
                     schedule_world_size=self.training.schedule_world_size,
                     **self.extra_state())
        rel = self.folder.checkpoint_name(name)
        save_checkpoint(state, self.folder.path / rel)
        if name == "latest.pt":
            self.last_checkpoint = self.iteration
        if announce:
            self.events.emit("checkpoint", iteration=self.iteration, epoch=self.epoch, path=rel)
        return rel

    def extra_state(self) -> dict[str, Any]:
        """More for the checkpoint (several processes add each one's own state)."""
        return {}

    def stop(self) -> int:
        """Checkpoint and end on request."""
        if self.count:
            self.log()
        rel = self.checkpoint()
        self.folder.write_status("stopped", iteration=self.iteration)
        self.events.emit("stopped", iteration=self.iteration, checkpoint=rel,
                         run=str(self.folder.path))
        return 0

    def finish(self) -> int:
        """The last log, sample and checkpoint, then the model file."""
        from cyclestudio.core.modelfile import export_model

        if self.count:
            self.log()
        if self.last_sample != self.iteration:
            self.sample()
        if self.validator is not None and self.last_validation != self.iteration:
            self.validate()
        rel = self.checkpoint()
        model = export_model(self.folder.path)
        self.folder.write_status("finished", iteration=self.iteration)
        self.events.emit("finished", iteration=self.iteration, checkpoint=rel,
                         model=self.folder.relative(model))
        return 0

