"""The CycleGAN objective and one training step, as in Zhu et al. (2017).

G_A maps A→B and G_B maps B→A; D_A judges domain B (real B against G_A's output)
and D_B judges domain A. The generators minimise the adversarial loss plus
λ·(cycle L1 both ways) plus λ·λ_identity·(identity L1); the discriminators see
fakes drawn from a history pool of 50.
"""

from __future__ import annotations

from contextlib import nullcontext
from functools import partial
from itertools import chain
from typing import Any

import torch
from torch import Tensor, nn

from cyclestudio.core.colour_match import ColourMatch
from cyclestudio.core.config import TrainConfig
from cyclestudio.core.networks import build_discriminator, build_generator
from cyclestudio.core.schedule import lr_factor
from cyclestudio.core.speed import checkpoint_activations
from cyclestudio.core.speed import resolve as resolve_speed
from cyclestudio.plugins.discovery import Registry

LOSS_NAMES = ("D_A", "G_A", "cycle_A", "idt_A", "D_B", "G_B", "cycle_B", "idt_B")
COLOUR_LOSS_NAMES = ("colour_A", "colour_B")  # logged only when lambda_colour > 0


class ImagePool:
    """A buffer of past fakes: half of the time the discriminator sees an older one."""

    def __init__(self, size: int, generator: torch.Generator) -> None:
        self.size = size
        self.images: list[Tensor] = []
        self.generator = generator

    def query(self, images: Tensor) -> Tensor:
        """Swap each image with a stored one at probability 0.5 once the pool is full."""
        if self.size == 0:
            return images
        out = []
        for image in images.detach():
            image = image.unsqueeze(0)
            if len(self.images) < self.size:
                self.images.append(image)
                out.append(image)
            elif torch.rand((), generator=self.generator).item() > 0.5:
                index = int(torch.randint(0, self.size, (), generator=self.generator))
                out.append(self.images[index].clone())
                self.images[index] = image
            else:
                out.append(image)
        return torch.cat(out, 0)

    def state(self) -> list[Tensor]:
        return [im.cpu() for im in self.images]

    def load(self, images: list[Tensor], device: torch.device) -> None:
        self.images = [im.to(device) for im in images]


class GANLoss:
    """LSGAN (the paper's choice), vanilla, hinge, or WGAN-GP on raw discriminator scores."""

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def generator(self, fake_scores: Tensor) -> Tensor:
        if self.kind == "lsgan":
            return torch.mean((fake_scores - 1) ** 2)
        if self.kind == "vanilla":
            return nn.functional.binary_cross_entropy_with_logits(
                fake_scores, torch.ones_like(fake_scores)
            )
        return -fake_scores.mean()  # hinge and WGAN

    def discriminator(self, real_scores: Tensor, fake_scores: Tensor) -> Tensor:
        if self.kind == "lsgan":
            loss = torch.mean((real_scores - 1) ** 2) + torch.mean(fake_scores**2)
        elif self.kind == "vanilla":
            bce = nn.functional.binary_cross_entropy_with_logits
            loss = bce(real_scores, torch.ones_like(real_scores)) + bce(
                fake_scores, torch.zeros_like(fake_scores)
            )
        elif self.kind == "hinge":
            loss = torch.relu(1 - real_scores).mean() + torch.relu(1 + fake_scores).mean()
        else:
            loss = fake_scores.mean() - real_scores.mean()
        return loss * 0.5


def gradient_penalty(
    d: nn.Module, real: Tensor, fake: Tensor, generator: torch.Generator
) -> Tensor:
    """WGAN-GP: (‖∇D(x̂)‖₂ − 1)² on random interpolates between real and fake."""
    alpha = torch.rand(real.size(0), 1, 1, 1, generator=generator).to(real.device)
    mixed = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    scores = d(mixed)
    (grad,) = torch.autograd.grad(scores.sum(), mixed, create_graph=True)
    return ((grad.flatten(1).norm(2, dim=1) - 1) ** 2).mean()


def cycle_warmup_factor(warmup: int, iteration: int) -> float:
    """The share of λ cycle used at ``iteration`` (from 0): half at first, growing in a
    straight line to all of it at ``warmup``; always all of it without a warm-up."""
    if warmup <= 0:
        return 1.0
    return 0.5 + 0.5 * min(1.0, iteration / warmup)


def average_decay(ema: float, ramp: int, steps: int) -> float:
    """The weight average's decay at its ``steps``-th update (from 1): (1 + n) / (1 + n +
    ramp), growing until it reaches ``ema``. While it grows, the average of weights that
    move at a steady pace lags n / (ramp + 1) steps behind them: ramp 9 (the first form,
    (1 + n) / (10 + n)) follows the last tenth of the run, ramp 3 the last quarter."""
    return min(ema, (1 + steps) / (1 + steps + ramp))


def _set_requires_grad(nets: list[nn.Module], flag: bool) -> None:
    for net in nets:
        for p in net.parameters():
            p.requires_grad_(flag)


class CycleGAN:
    """Two generators, two discriminators, their optimisers and pools, on one device."""

    def __init__(
        self,
        config: TrainConfig,
        device: torch.device,
        iterations_per_epoch: int,
        reg: Registry | None = None,
    ) -> None:
        self.config, self.device = config, device
        o, c = config.optim, config.data.channels
        torch.manual_seed(config.run.seed)
        g, d = config.generator, config.discriminator
        fixed = config.data.preprocess not in ("scale_width", "none")
        self.speed = resolve_speed(config.run, device, fixed_size=fixed)
        layout = self.speed.memory_format
        self.G_A = build_generator(g.name, g.options, c, c, reg).to(device, memory_format=layout)
        self.G_B = build_generator(g.name, g.options, c, c, reg).to(device, memory_format=layout)
        self.D_A = build_discriminator(d.name, d.options, c, reg).to(device, memory_format=layout)
        self.D_B = build_discriminator(d.name, d.options, c, reg).to(device, memory_format=layout)
        # The weight average (``ema``): plain copies of the generators, never trained.
        self.ema: dict[str, nn.Module] = {}
        self.ema_steps = 0
        self.cycle_factor = cycle_warmup_factor(o.cycle_warmup, 0)  # set_lr moves it on
        if config.optim.ema > 0:
            for key in ("G_A", "G_B"):
                average = build_generator(g.name, g.options, c, c, reg).to(
                    device, memory_format=layout)
                average.load_state_dict(self.nets[key].state_dict())
                self.ema[key] = average.requires_grad_(False).eval()
        if self.speed.checkpointing:
            for net in (self.G_A, self.G_B):
                checkpoint_activations(net)
        if self.speed.compile:
            for net in (self.G_A, self.G_B, self.D_A, self.D_B):
                net.compile()  # in place: the weights' names (and checkpoints) stay the same
        adam = {"lr": o.lr_g, "betas": (o.beta1, o.beta2)}
        if self.speed.fused_optimizer:
            adam["fused"] = True
        self.opt_G = torch.optim.Adam(chain(self.G_A.parameters(), self.G_B.parameters()), **adam)
        self.opt_D = torch.optim.Adam(chain(self.D_A.parameters(), self.D_B.parameters()),
                                      **{**adam, "lr": o.lr_d})
        self.pool_rng = torch.Generator().manual_seed(config.run.seed + 7)
        self.pool_A = ImagePool(o.pool_size, self.pool_rng)  # fakes of domain A, for D_B
        self.pool_B = ImagePool(o.pool_size, self.pool_rng)  # fakes of domain B, for D_A
        self.gan = GANLoss(o.gan_loss)
        # The colour-distribution loss (lambda_colour > 0): G_A's colours against B's, G_B's
        # against A's; its own random numbers, so turning it on changes nothing else.
        self.colour_rng = torch.Generator().manual_seed(config.run.seed + 11)
        self.colour = ({"A": ColourMatch(self.colour_rng), "B": ColourMatch(self.colour_rng)}
                       if o.lambda_colour > 0 else {})
        # Where the generators have a colour branch (``colour_branch``: a module whose
        # output is added to theirs as it is), the colour loss trains that branch alone:
        # the spatial part could meet a colour distribution by painting around objects.
        self._branch_out: dict[str, list[Tensor]] = {"G_A": [], "G_B": []}
        if self.colour:
            for key in ("G_A", "G_B"):
                branch = getattr(self.nets[key], "colour_branch", None)
                if isinstance(branch, nn.Module):
                    branch.register_forward_hook(partial(self._keep_branch_output, key))
        self.l1 = nn.L1Loss()
        self.iterations_per_epoch = iterations_per_epoch
        self.precision = self.speed.precision
        use_scaler = self.precision == "fp16" and device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda") if use_scaler else None
        # What the training step runs instead of a network, by name: the
        # DistributedDataParallel wrappers when several processes train one run
        # (core/distributed.py). Everything else uses the networks themselves.
        self.step_nets: dict[str, nn.Module] = {}

    def _keep_branch_output(self, key: str, _module: nn.Module, _inputs: Any,
                            output: Tensor) -> None:
        if torch.is_grad_enabled():  # a training step's, not validation's or samples'
            self._branch_out[key].append(output)

    @property
    def nets(self) -> dict[str, nn.Module]:
        return {"G_A": self.G_A, "G_B": self.G_B, "D_A": self.D_A, "D_B": self.D_B}

    @property
    def generators(self) -> dict[str, nn.Module]:
        """The generators that translate (validation, samples, best checkpoint, export):
        the weight average when the run keeps one, else the trained networks."""
        return self.ema or {"G_A": self.G_A, "G_B": self.G_B}

    @torch.no_grad()
    def update_average(self) -> None:
        """Move the weight average towards the generators just stepped, with the decay
        :func:`average_decay` gives: early in a run the average follows the generators
        instead of their random start."""
        if not self.ema:
            return
        self.ema_steps += 1
        o = self.config.optim
        decay = average_decay(o.ema, o.ema_ramp, self.ema_steps)
        for key, average in self.ema.items():
            trained = self.nets[key]
            torch._foreach_lerp_(list(average.parameters()),
                                 [p.detach() for p in trained.parameters()], 1 - decay)
            for mine, theirs in zip(average.buffers(), trained.buffers(), strict=True):
                mine.copy_(theirs)

    # The schedule -------------------------------------------------------------
    def schedule(self) -> tuple[int, int, int]:
        """(total iterations of the schedule, where decay starts, step size)."""
        o, ipe = self.config.optim, self.iterations_per_epoch
        return o.epochs * ipe, (o.epochs - o.decay_epochs) * ipe, o.step_epochs * ipe

    def set_lr(self, iteration: int) -> float:
        """Set both optimisers' learning rates for ``iteration``; return the generator's."""
        o = self.config.optim
        total, decay_start, step = self.schedule()
        factor = lr_factor(o.lr_policy, iteration, total, decay_start, step)
        for group in self.opt_G.param_groups:
            group["lr"] = o.lr_g * factor
        for group in self.opt_D.param_groups:
            group["lr"] = o.lr_d * factor
        self.cycle_factor = cycle_warmup_factor(o.cycle_warmup, iteration)
        return o.lr_g * factor

    # One step -----------------------------------------------------------------
    def _autocast(self) -> Any:
        if self.precision == "fp32":
            return nullcontext()
        dtype = torch.bfloat16 if self.precision == "bf16" else torch.float16
        return torch.autocast(self.device.type, dtype=dtype)

    def _backward(self, loss: Tensor, opt: torch.optim.Optimizer,
                  routed: list[tuple[Tensor, Tensor]] | None = None) -> None:
        """Backward ``loss`` (and each (output, gradient) of ``routed``), then step."""
        def scaled(t: Tensor) -> Tensor:
            return self.scaler.scale(t) if self.scaler is not None else t

        if routed:
            torch.autograd.backward([scaled(loss), *(out for out, _ in routed)],
                                    [None, *(scaled(grad) for _, grad in routed)])
        else:
            scaled(loss).backward()
        if self.scaler is None:
            opt.step()
        else:
            self.scaler.step(opt)

    def train_step(self, real_A: Tensor, real_B: Tensor) -> dict[str, float]:
        """One optimisation step of G then D; returns every loss as a float."""
        o = self.config.optim
        # The identity loss keeps its weight relative to the whole λ cycle, warm-up or not.
        lam, lam_idt = o.lambda_cycle * self.cycle_factor, o.lambda_cycle * o.lambda_identity
        layout = self.speed.memory_format
        real_A = real_A.to(self.device, non_blocking=True, memory_format=layout)
        real_B = real_B.to(self.device, non_blocking=True, memory_format=layout)
        discriminators = [self.D_A, self.D_B]
        step = {**self.nets, **self.step_nets}
        G_A, G_B, D_A, D_B = step["G_A"], step["G_B"], step["D_A"], step["D_B"]

        # Generators: the discriminators are frozen so their weights get no gradient.
        _set_requires_grad(discriminators, False)
        self.opt_G.zero_grad(set_to_none=True)
        for outs in self._branch_out.values():
            outs.clear()
        with self._autocast():
            fake_B = G_A(real_A)
            rec_A = G_B(fake_B)
            fake_A = G_B(real_B)
            rec_B = G_A(fake_A)
            if lam_idt > 0:
                idt_A = self.l1(G_A(real_B), real_B) * lam_idt
                idt_B = self.l1(G_B(real_A), real_A) * lam_idt
            else:
                idt_A = idt_B = torch.zeros((), device=self.device)
            # The frozen discriminators run unwrapped: a DDP wrapper would wait for
            # gradients they do not get.
            g_A = self.gan.generator(self.D_A(fake_B).float())
            g_B = self.gan.generator(self.D_B(fake_A).float())
            cycle_A = self.l1(rec_A, real_A) * lam
            cycle_B = self.l1(rec_B, real_B) * lam
            loss_G = g_A + g_B + cycle_A + cycle_B + idt_A + idt_B
            routed: list[tuple[Tensor, Tensor]] = []  # (branch output, its gradient)
            if self.colour:
                colour_A = self.colour["A"].loss(fake_B, real_B) * o.lambda_colour
                colour_B = self.colour["B"].loss(fake_A, real_A) * o.lambda_colour
                # G_A's first call made fake_B; G_B's second made fake_A (its first: rec_A).
                branches = self._branch_out["G_A"][:1] + self._branch_out["G_B"][1:2]
                if len(branches) == 2:
                    # The loss's gradient at the translations goes into the branches'
                    # outputs only (each is added to its translation as it is).
                    grads = torch.autograd.grad(colour_A + colour_B, [fake_B, fake_A],
                                                retain_graph=True)
                    routed = list(zip(branches, grads, strict=True))
                else:
                    loss_G = loss_G + colour_A + colour_B
        self._backward(loss_G, self.opt_G, routed)
        self.update_average()

        # Discriminators, on pooled fakes.
        _set_requires_grad(discriminators, True)
        self.opt_D.zero_grad(set_to_none=True)
        pooled_B = self.pool_B.query(fake_B.detach().float())
        pooled_A = self.pool_A.query(fake_A.detach().float())
        with self._autocast():
            d_A = self.gan.discriminator(D_A(real_B).float(), D_A(pooled_B).float())
            d_B = self.gan.discriminator(D_B(real_A).float(), D_B(pooled_A).float())
        if o.gan_loss == "wgangp":
            d_A = d_A + o.gp_weight * gradient_penalty(D_A, real_B, pooled_B, self.pool_rng)
            d_B = d_B + o.gp_weight * gradient_penalty(D_B, real_A, pooled_A, self.pool_rng)
        self._backward(d_A + d_B, self.opt_D)
        if self.scaler is not None:
            self.scaler.update()

        names, values = LOSS_NAMES, (d_A, g_A, cycle_A, idt_A, d_B, g_B, cycle_B, idt_B)
        if self.colour:
            names, values = names + COLOUR_LOSS_NAMES, (*values, colour_A, colour_B)
        return dict(
            zip(names, torch.stack([v.detach().float() for v in values]).tolist(), strict=True)
        )

    @torch.no_grad()
    def sample_grid(self, real_A: Tensor, real_B: Tensor) -> Tensor:
        """Rows of [A, A→B, A→B→A, B, B→A, B→A→B], each (N, C, H, W) in [-1, 1]."""
        G_A, G_B = self.generators["G_A"], self.generators["G_B"]
        was_training = G_A.training
        G_A.eval()
        G_B.eval()
        try:
            real_A, real_B = real_A.to(self.device), real_B.to(self.device)
            fake_B = G_A(real_A)
            fake_A = G_B(real_B)
            n = min(len(real_A), len(real_B))
            cols = [
                real_A[:n],
                fake_B[:n],
                G_B(fake_B)[:n],
                real_B[:n],
                fake_A[:n],
                G_A(fake_A)[:n],
            ]
            return torch.stack([c.float().cpu() for c in cols], 1)  # (N, 6, C, H, W)
        finally:
            G_A.train(was_training)
            G_B.train(was_training)

    # State ---------------------------------------------------------------------
    def finite(self) -> bool:
        """True while every weight of the four networks is a finite number."""
        return all(bool(torch.isfinite(p).all()) for net in self.nets.values()
                   for p in net.parameters())

    def state_dict(self, generators_only: bool = False) -> dict[str, Any]:
        """Everything needed to continue exactly (see core/checkpoint.py for the keys);
        ``generators_only``: just the two generators' weights, for a best checkpoint."""
        if generators_only:
            return {"nets": {k: {n: t.cpu() for n, t in net.state_dict().items()}
                             for k, net in self.generators.items()}}
        rng: dict[str, Any] = {"torch": torch.get_rng_state(), "pool": self.pool_rng.get_state(),
                               "colour": self.colour_rng.get_state()}
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        total, decay_start, step = self.schedule()
        return {
            "nets": {
                k: {n: t.cpu() for n, t in v.state_dict().items()} for k, v in self.nets.items()
            },
            "optimizers": {"G": _cpu(self.opt_G.state_dict()), "D": _cpu(self.opt_D.state_dict())},
            "schedulers": {
                "policy": self.config.optim.lr_policy,
                "total": total,
                "decay_start": decay_start,
                "step": step,
            },
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "pools": {"A": self.pool_A.state(), "B": self.pool_B.state()},
            "colour": {k: match.state() for k, match in self.colour.items()},
            "rng": rng,
            **({"ema": {k: {n: t.cpu() for n, t in v.state_dict().items()}
                        for k, v in self.ema.items()},
                "ema_steps": self.ema_steps} if self.ema else {}),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what ``state_dict`` saved."""
        for key, net in self.nets.items():
            net.load_state_dict(state["nets"][key])
        for key, average in self.ema.items():
            # A checkpoint without an average (none kept before): start it from the nets.
            average.load_state_dict((state.get("ema") or state["nets"])[key])
        self.ema_steps = int(state.get("ema_steps", 0))
        self.opt_G.load_state_dict(state["optimizers"]["G"])
        self.opt_D.load_state_dict(state["optimizers"]["D"])
        if self.scaler is not None and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.pool_A.load(state["pools"]["A"], self.device)
        self.pool_B.load(state["pools"]["B"], self.device)
        rng = state["rng"]
        torch.set_rng_state(rng["torch"])
        self.pool_rng.set_state(rng["pool"])
        if "colour" in rng:  # checkpoints from before the colour loss have neither
            self.colour_rng.set_state(rng["colour"])
        for key, match in self.colour.items():
            match.load(state.get("colour", {}).get(key, {}), self.device)
        if "cuda" in rng and self.device.type == "cuda":
            torch.cuda.set_rng_state(rng["cuda"], self.device)

    def move_to(self, device: torch.device) -> None:
        """Move networks, optimiser state and pools (pause frees the GPU this way)."""
        for net in (*self.nets.values(), *self.ema.values()):
            net.to(device)
        for opt in (self.opt_G, self.opt_D):
            for st in opt.state.values():
                for k, v in st.items():
                    if isinstance(v, Tensor) and k != "step":
                        st[k] = v.to(device)
        self.pool_A.load(self.pool_A.images, device)
        self.pool_B.load(self.pool_B.images, device)
        for match in self.colour.values():
            match.load(match.state(), device)
        self.device = device


def _cpu(obj: Any) -> Any:
    if isinstance(obj, Tensor):
        return obj.cpu()
    if isinstance(obj, dict):
        return {k: _cpu(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_cpu(v) for v in obj]
    return obj
