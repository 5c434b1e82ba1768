"""A score-based (diffusion) prior: posterior sampling by annealed Langevin dynamics with the
measurement likelihood (Jalal, Arvinte, Daras, Price, Dimakis & Tamir, ICML 2021).

The score network s(x, sigma) ~ grad_x log p_sigma(x) (score_net.py, trained by denoising score
matching with `csbench train score`) is annealed over `levels` noise levels
sigma_1 = sigma_max > ... > sigma_L = sigma_min (geometric). With the likelihood gradient at
noise level sigma (GaussianLikelihood; sigma_y^2 = noise^2 / m, the per-measurement variance)

    g(x, sigma) = A^T (sigma_y^2 I + v A A^T)^{-1} (y - A D(x, sigma)),  v = sigma^2 s_d^2 / (sigma^2 + s_d^2)

(Jalal et al.'s A^T (y - A x) / (sigma_y^2 + gamma^2) with gamma^2 = v A A^T, the residual taken at
the denoised estimate D ~ E[x0 | x]; s_d = 0.3, the data scale; see GaussianLikelihood)

each level does one reverse-diffusion (predictor) step to the next level and `steps` Langevin
(corrector) steps there:

    predictor:  x <- x + d_i [s(x, sigma_i) + w g(x, sigma_i)] + sqrt(d_i) z,   d_i = sigma_i^2 - sigma_{i+1}^2
    corrector:  x <- x + eta [s(x, sigma) + w g(x, sigma)] + sqrt(2 eta) z,      eta = step * sigma^2

z ~ N(0, I), w = `weight` (the likelihood weight, tuned on validation images). Starting from
x = 1/2 + sigma_max z, the sample is finished by one Tweedie denoising step
x <- D(x, sigma_min) = x + sigma_min^2 s(x, sigma_min) and clipped to [0, 1]. The prior returns the
mean of `samples` independent posterior samples (samples = 1: one posterior sample; more approach
the posterior mean, which has the lower MSE). Cost: levels * (1 + steps) + 1 network evaluations
per sample.

Randomness comes only from `problem.generator`; the Langevin noise z is drawn once per sample and
shared by the instances of a batch, so an instance's result does not depend on its neighbours.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from csbench.errors import CsbenchError
from csbench.generative.score_net import ScoreUNet, load_score_net
from csbench.priors import Prior, PriorContext
from csbench.problem import Problem
from csbench.progress import step_progress
from csbench.rng import torch_generator

MODEL = "score"
QUALITY_SIGMAS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)


def noise_levels(sigma_max: float, sigma_min: float, levels: int) -> list[float]:
    """Geometric sequence sigma_max ... sigma_min of `levels` values."""
    if levels < 1 or not 0 < sigma_min <= sigma_max:
        raise CsbenchError(f"score prior needs levels >= 1 and 0 < sigma_min <= sigma_max, "
                           f"got {levels}, {sigma_min}, {sigma_max}")
    if levels == 1:
        return [float(sigma_min)]
    ratio = math.log(sigma_max / sigma_min) / (levels - 1)
    return [float(sigma_max * math.exp(-ratio * i)) for i in range(levels)]


def annealed_langevin(net: ScoreUNet, generator: torch.Generator, *, batch: int, samples: int = 1,
                      step: Tensor | float = 0.1, weight: Tensor | float = 1.0, levels: int = 40, steps: int = 1,
                      sigma_max: float = 10.0, sigma_min: float = 0.01, operator: Any = None,
                      y: Tensor | None = None, noise_var: float = 0.0, lipschitz: Tensor | None = None,
                      data_scale: float = 0.3, device: str | torch.device = "cpu") -> Tensor:
    """Annealed Langevin dynamics with a reverse-diffusion predictor (module docstring); with
    `operator` None, unconditional sampling.

    `step` and `weight` may be tensors of G values (broadcast together): the G runs share their
    noise and come back stacked. Returns x of shape (G, samples, batch, C, H, W), clipped to [0, 1].
    `lipschitz`: ||A_b||^2 per instance, shape (batch,).
    """
    shape, n = net.shape, math.prod(net.shape)
    step, weight = torch.broadcast_tensors(torch.as_tensor(step, dtype=torch.float32).reshape(-1),
                                           torch.as_tensor(weight, dtype=torch.float32).reshape(-1))
    step, weight = step.to(device)[:, None, None, None], weight.to(device)[:, None, None, None]
    g = step.shape[0]
    sigmas = noise_levels(sigma_max, sigma_min, levels)
    if operator is not None:
        likelihood = GaussianLikelihood(operator, y, noise_var, lipschitz, data_scale)

    def draw() -> Tensor:  # (1, S, 1, n): one draw per sample, shared by grid points and instances
        return torch.randn(1, samples, 1, n, generator=generator).to(device)

    def drift(x: Tensor, sigma: float, eta: Tensor) -> Tensor:
        """eta * (score + weight * likelihood gradient at noise level sigma)."""
        denoised = net.denoise(x.reshape(g, samples, batch, *shape), sigma).reshape(x.shape)
        update = eta * (denoised - x) / sigma ** 2
        if operator is not None:
            update = update + (eta * weight) * likelihood.gradient(denoised, sigma)
        return update

    x = (0.5 + sigmas[0] * draw()).expand(g, samples, batch, n).contiguous()
    for i, sigma in enumerate(sigmas):
        step_progress("annealed Langevin, noise level", i, len(sigmas))
        if i + 1 < len(sigmas):  # predictor: reverse diffusion sigma_i -> sigma_{i+1}
            delta = sigma ** 2 - sigmas[i + 1] ** 2
            x = x + drift(x, sigma, torch.full_like(step, delta)) + delta ** 0.5 * draw()
            sigma = sigmas[i + 1]
        for _ in range(steps):  # corrector: Langevin at the new level
            eta = step * sigma ** 2
            x = x + drift(x, sigma, eta) + (2 * eta).sqrt() * draw()
    x = net.denoise(x.reshape(g, samples, batch, *shape), sigmas[-1])
    return x.clamp(0.0, 1.0)


class GaussianLikelihood:
    """The measurement term of the Langevin drift, for y = A x0 + e, e ~ N(0, sigma_y^2 I):

        g(x, sigma) = A^T (sigma_y^2 I + v A A^T)^{-1} (y - A D(x, sigma)),
        v = sigma^2 s_d^2 / (sigma^2 + s_d^2)

    Jalal et al.'s A^T (y - A x) / (sigma_y^2 + gamma^2) with gamma^2 = v A A^T, the residual taken
    at the denoised estimate D(x, sigma) ~ E[x0 | x] (whose error covariance is about v I under a
    N(., s_d^2 I) prior), as in Song et al.'s PiGDM with the Jacobian dD/dx replaced by I. For
    sigma << s_d it is A^T (sigma_y^2 + sigma^2 A A^T)^{-1} (y - A x), Jalal et al.'s term with
    gamma^2 = sigma^2 A A^T. (Keeping Tweedie's Jacobian v / sigma^2 I made the data term vanish
    at large sigma: 8 validation digits, m = 100: MSE 0.041 vs 0.016 without it.) With a dense A
    it is applied in the eigenbasis of A A^T = U diag(lambda) U^T (one eigh per task); operators
    without a dense matrix (subsampled DCT, inpainting, super-resolution) have A A^T = ||A||^2 I,
    so lambda = ||A||^2. Its curvature in x is at most about (v / sigma^2) / v = 1 / sigma^2, so
    steps eta ~ sigma^2 with weight ~ 1 stay stable for every operator and m."""

    def __init__(self, operator: Any, y: Tensor, noise_var: float, lipschitz: Tensor, sigma_data: float):
        self.operator, self.y, self.noise_var, self.sigma_data = operator, y, float(noise_var), float(sigma_data)
        dense = operator.dense()
        if dense is not None:
            gram = dense @ dense.transpose(1, 2)
            self.eigenvalues, self.basis = torch.linalg.eigh(gram.double())
            self.eigenvalues = self.eigenvalues.clamp_min(0).to(y.dtype)
            self.basis = self.basis.to(y.dtype)
        else:
            self.eigenvalues, self.basis = lipschitz.reshape(-1, 1).to(y.dtype), None

    def gradient(self, denoised: Tensor, sigma: float) -> Tensor:
        """g(x, sigma) from D(x, sigma) (flattened, (..., B, n))."""
        v = sigma ** 2 * self.sigma_data ** 2 / (sigma ** 2 + self.sigma_data ** 2)
        residual = self.y - self.operator.forward(denoised)  # (..., B, m)
        scale = 1.0 / (self.noise_var + v * self.eigenvalues)  # (B, m) or (B, 1)
        if self.basis is None:
            return self.operator.adjoint(residual * scale)
        coords = torch.einsum("bmk,...bm->...bk", self.basis, residual) * scale
        return self.operator.adjoint(torch.einsum("bmk,...bk->...bm", self.basis, coords))


class ScorePrior(Prior):
    """Posterior sampling with a score network trained on the dataset (see module docstring)."""

    name = "score"
    kind = "generative"
    description = ("score network (DSM-trained U-Net) + annealed Langevin posterior sampling with the "
                   "likelihood A^T(sigma_y^2 + v_t AA^T)^-1(y - A D(x_t)) (Jalal et al. 2021, residual at the "
                   "denoised estimate); scores the mean of `samples` posterior samples (default 2; samples=1: "
                   "a single sample)")
    parameters = {"samples": 2, "weight": 1.0, "step": 0.5, "levels": 30, "steps": 1,
                  "sigma_max": 10.0, "sigma_min": 0.01}
    tuning = {"weight": [0.5, 1.0, 2.0]}
    links = ("identity",)  # sign / abs (one-bit, phaseless) have no Gaussian likelihood: skipped
    net: ScoreUNet | None = None

    def setup(self, context: PriorContext) -> None:
        super().setup(context)
        path = find_score_checkpoint(context.dataset.name)
        if path is None:
            raise CsbenchError(f"no score checkpoint for dataset {context.dataset.name}; "
                               f"train one with `csbench train score --dataset {context.dataset.name}`")
        net, _ = load_score_net(path, context.device)
        if math.prod(net.shape) != math.prod(tuple(context.shape)):
            raise CsbenchError(f"checkpoint {path} makes {net.shape} images, the dataset has {tuple(context.shape)}")
        self.net = net

    def supports(self, measurement: Any, dataset: Any) -> str | None:
        reason = super().supports(measurement, dataset)
        if reason:
            return reason
        if find_score_checkpoint(dataset.name) is None:
            return (f"no score checkpoint for dataset {dataset.name} "
                    f"(train one with `csbench train score --dataset {dataset.name}`)")
        return None

    def recover(self, problem: Problem) -> Tensor:
        return self._sample(problem, [{}])[0]

    def recover_grid(self, problem: Problem, grid: list[dict[str, Any]]) -> list[Tensor | Exception]:
        """All grid points in one batched run when only `weight` / `step` vary (they share their
        noise, so each equals `with_params(**point).recover(problem)`); otherwise point by point."""
        if not grid or any(not set(point) <= {"weight", "step"} for point in grid):
            return super().recover_grid(problem, grid)
        try:
            x = self._sample(problem, grid)
        except Exception:
            return super().recover_grid(problem, grid)
        return list(x)

    def _sample(self, problem: Problem, grid: list[dict[str, Any]]) -> Tensor:
        """(G, B, C, H, W): the mean of `samples` posterior samples at each of G grid points."""
        if self.net is None:
            raise CsbenchError("prior 'score' has no network: call setup(context) first")
        if problem.link not in self.links:
            raise CsbenchError(f"the score prior does not handle the {problem.link!r} link")
        expected = (problem.operator.batch, problem.operator.m)
        if tuple(problem.y.shape) != expected:
            raise CsbenchError(f"measurements of shape {tuple(problem.y.shape)} do not match the operator "
                               f"({expected[0]} instances x {expected[1]} measurements)")
        if math.prod(problem.shape) != math.prod(self.net.shape):
            raise CsbenchError(f"the score network makes {self.net.shape} images, the problem has {problem.shape}")
        p = self.params
        samples = int(p["samples"])
        steps = [float({**p, **point}["step"]) for point in grid]
        weights = [float({**p, **point}["weight"]) for point in grid]
        if samples < 1 or int(p["steps"]) < 0 or min(steps) <= 0 or min(weights) < 0:
            raise CsbenchError("score prior needs samples >= 1, steps >= 0, step > 0 and weight >= 0")
        device = problem.device
        lipschitz = problem.operator.norm_squared().to(device).clamp_min(1e-12)
        with torch.no_grad():
            x = annealed_langevin(self.net, problem.generator, batch=problem.batch, samples=samples,
                                  step=torch.tensor(steps), weight=torch.tensor(weights), levels=int(p["levels"]),
                                  steps=int(p["steps"]), sigma_max=float(p["sigma_max"]),
                                  sigma_min=float(p["sigma_min"]), operator=problem.operator, y=problem.y,
                                  noise_var=float(problem.noise) ** 2 / problem.m, lipschitz=lipschitz,
                                  device=device)
        return x.mean(dim=1).reshape(len(grid), problem.batch, *problem.shape)


def find_score_checkpoint(dataset_name: str) -> Path | None:
    """`score-{dataset}.pt` in the zoo's checkpoint folders ($CSBENCH_CHECKPOINTS first)."""
    from csbench.generative.zoo import checkpoint_dirs

    for folder in checkpoint_dirs():
        path = folder / f"{MODEL}-{dataset_name}.pt"
        if path.is_file():
            return path
    return None


def score_quality(net: ScoreUNet, data: Any, seed: int, png: Path, n_images: int = 200,
                  n_samples: int = 64) -> dict[str, Any]:
    """Sidecar entries measuring a trained score network:

    denoising_error[sigma]: mean per-pixel ||D(x + sigma e, sigma) - x||^2 / n over the first
    `n_images` validation images (the noisy input's error is sigma^2); and a PNG grid of
    `n_samples` unconditional annealed-Langevin samples (default prior parameters)."""
    net = net.eval()
    x = data.split("validation", n_images)
    generator = torch_generator(seed, "score-quality", data.name)
    errors = {}
    with torch.no_grad():
        for sigma in QUALITY_SIGMAS:
            noisy = x + sigma * torch.randn(x.shape, generator=generator)
            errors[str(sigma)] = round((net.denoise(noisy, sigma) - x).pow(2).mean().item(), 6)
        defaults = ScorePrior.parameters
        grid = annealed_langevin(net, generator, batch=1, samples=n_samples, step=defaults["step"],
                                 weight=defaults["weight"], levels=defaults["levels"], steps=defaults["steps"],
                                 sigma_max=defaults["sigma_max"], sigma_min=defaults["sigma_min"])[0, :, 0]
    save_grid(grid, png)
    return {"denoising_error": errors,
            "denoising_protocol": {"split": "validation", "n_images": int(x.shape[0]),
                                   "metric": "per-pixel MSE of D(x + sigma e, sigma); the noisy input has sigma^2"},
            "samples_png": png.name,
            "samples_protocol": {"sampler": "annealed Langevin, unconditional", "n_samples": n_samples,
                                 **{k: defaults[k] for k in ("step", "levels", "steps", "sigma_max", "sigma_min")}}}


def save_grid(images: Tensor, path: Path) -> None:
    """(N, C, H, W) in [0, 1] -> a square-ish PNG grid (grey or RGB), 2-pixel gaps."""
    from PIL import Image

    count, channels, h, w = images.shape
    cols = math.ceil(math.sqrt(count))
    rows = math.ceil(count / cols)
    canvas = torch.ones(channels, rows * (h + 2) + 2, cols * (w + 2) + 2)
    for i in range(count):
        r, c = divmod(i, cols)
        canvas[:, 2 + r * (h + 2): 2 + r * (h + 2) + h, 2 + c * (w + 2): 2 + c * (w + 2) + w] = images[i]
    array = (canvas.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    Image.fromarray(array[:, :, 0] if channels == 1 else array).save(path)
