"""How good is each built-in model? Numbers for the closing notes and the dashboard.

- ``classifier``: test-set accuracy of the small CNN that scores generated digits.
- ``flow-*`` / ``ddpm-class``: generate ``per_label`` digits of each class (CFG gamma 5 with
  300 Euler steps for flows; gamma 7 with the strided 33-step loop for the DDPM) and report the
  classifier's per-class accuracy on them.
- Fréchet distance (``fd_to_test``): samples against test digits of the same classes in the
  classifier's feature space, PCA-reduced to ``FD_DIMS``; the floor is what real test digits
  score. Accuracy saturates (5 Euler steps already give 100 %); the distance sees variety and
  stroke quality. (Heusel et al. 2017's FID, with an MNIST network instead of Inception.)
- ``denoiser``: test-set PSNR at sigma = 0.5 and across the sigma grid (out of distribution).
- ``denoiser-pure-noise``: RMS difference between its output and the training-set mean image.
Every number is measured with fixed seeds, so a rerun reproduces it.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import torch

from .adapters import MNISTDDPM, FlowModel, load_builtin, load_model
from .classifier import class_probs, classify, features
from .course import DDPM_GUIDANCE, EULER_STEPS, SIGMA_GRID, STRIDE
from .data import load_mnist, mnist_mean_image
from .device import cpu_amp
from .forward import add_noise_sigma
from .metrics import psnr
from .sampling import default_guidance, digit_labels, sample_ddpm, sample_flow


def classifier_accuracy(root: Path | None = None, model_dir: Path | None = None) -> dict:
    net, _, _ = load_model("classifier", root, model_dir)
    test = load_mnist("test")
    pred = classify(net, test.images)
    return {"test_accuracy": float((pred == test.labels).float().mean())}


def per_class_accuracy(pred: torch.Tensor, labels: torch.Tensor) -> dict:
    out = {str(c): float((pred[labels == c] == c).float().mean()) for c in labels.unique().tolist()}
    out["overall"] = float((pred == labels).float().mean())
    return out


def sample_quality(name: str, per_label: int = 20, seed: int = 0, root: Path | None = None,
                   guidance: float | None = None, steps: int = EULER_STEPS, stride: int = STRIDE,
                   device: str = "cpu", fd: bool = False, model_dir: Path | None = None) -> dict:
    """Generate ``per_label`` digits of each class and score them with the classifier (the
    shipped one, from ``root``); the model is ``name`` or the trained run in ``model_dir``.

    ``device`` runs the model's net there (the noise and the loop stay on the CPU, so a seed
    gives the same starting noise everywhere); bf16 on CPUs that have it, fp32 on CUDA."""
    classifier, _, _ = load_builtin("classifier", root)
    net, cfg, _ = load_model(name, root, model_dir)
    net = net.to(device)
    amp = cpu_amp() if torch.device(device).type == "cpu" else None
    labels = digit_labels(range(10), per_label)
    conditional = cfg.arch == "class"  # ddpm-class and flow-class; flow-time has no class to ask for
    gen = torch.Generator().manual_seed(seed)
    t0 = time.perf_counter()
    if cfg.objective == "ddpm":
        guidance = DDPM_GUIDANCE if guidance is None else guidance
        traj = sample_ddpm(MNISTDDPM(net, amp=amp), labels, stride, guidance, gen, record=False)
        images = torch.from_numpy(traj.to_unit().final)
        setting = {"guidance": guidance, "stride": stride}
    elif conditional:
        guidance = default_guidance(cfg) if guidance is None else guidance
        traj = sample_flow(FlowModel(net, cfg, amp), labels, len(labels), steps, guidance, gen, record=False)
        images = traj.final.clamp(0, 1)
        setting = {"guidance": guidance, "steps": steps}
    else:  # time-only flow: no class to ask for, so no accuracy; which digits come out, how surely
        traj = sample_flow(FlowModel(net, cfg, amp), None, len(labels), steps, None, gen, record=False)
        images = traj.final.clamp(0, 1)
        setting = {"steps": steps}
    run = {"samples": len(labels), "seed": seed, "sampling_s": round(time.perf_counter() - t0, 1),
           "device": device}
    if fd:  # the Fréchet distance to test digits of the same classes, and its floor
        run |= fd_to_test(classifier, images, labels if conditional else None, seed)
    if not conditional:
        return unconditional_quality(classifier, images) | setting | run
    result = {"per_class_accuracy": per_class_accuracy(classify(classifier, images), labels)}
    return result | setting | run


def unconditional_quality(classifier: torch.nn.Module, images: torch.Tensor) -> dict:
    """For samples drawn without a class: the share of each digit the classifier sees (a model
    that covers MNIST gives about 0.1 each) and its mean confidence (softmax max; real test digits
    score close to 1, scribbles lower)."""
    probs = class_probs(classifier, images)
    pred = probs.argmax(1)
    share = torch.bincount(pred, minlength=10).float() / len(pred)
    return {"class_share": {str(c): round(float(v), 3) for c, v in enumerate(share)},
            "mean_confidence": round(float(probs.max(1).values.mean()), 4),
            "confident_share": round(float((probs.max(1).values > 0.9).float().mean()), 4)}


FD_DIMS = 32  # PCA components, whitened: what separates 5 from 300 Euler steps (16 blur it)
_FD_SPACE: dict = {}


def fd_space(classifier: torch.nn.Module) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(mean, basis (128, FD_DIMS), test features, test labels): the whitened PCA of the
    classifier's features of all 10000 test digits (every component scaled to unit variance, so
    the fine within-class directions count as much as the class identity), and the test digits
    projected into it. Computed once per classifier."""
    key = id(classifier)
    if key not in _FD_SPACE:
        test = load_mnist("test")
        feats = features(classifier, test.images).double()
        mean = feats.mean(0)
        _, s, v = torch.linalg.svd(feats - mean, full_matrices=False)
        basis = v[:FD_DIMS].T / (s[:FD_DIMS] / (len(feats) - 1) ** 0.5)
        _FD_SPACE[key] = (mean, basis, (feats - mean) @ basis, test.labels)
    return _FD_SPACE[key]


def frechet_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2)) between two sets of vectors (N, d)."""
    from scipy import linalg

    a, b = a.double().numpy(), b.double().numpy()
    mu = a.mean(0) - b.mean(0)
    s_a, s_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = linalg.sqrtm(s_a @ s_b)
    root = root.real if np.iscomplexobj(root) else root
    return float(mu @ mu + np.trace(s_a + s_b - 2 * root))


def fd_to_test(classifier: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor | None = None,
               seed: int = 0) -> dict:
    """Fréchet distance of ``images`` (N, 1, 28, 28) in [0, 1] to the test digits of the same
    classes: each feature vector minus the mean test feature of its class (the asked class, or
    the classifier's reading for unconditional samples), so the distance compares the variety
    within each digit and not the class mix. The reference is the second half of the test set;
    the floor is what digits from the first half score with the same class counts (mean of 5)."""
    mean, basis, test, test_labels = fd_space(classifier)
    half = len(test_labels) // 2
    ref, ref_labels, pool, pool_labels = test[half:], test_labels[half:], test[:half], test_labels[:half]
    centers = torch.stack([ref[ref_labels == c].mean(0) for c in range(10)])
    ours = (features(classifier, images).double() - mean) @ basis
    classes = labels if labels is not None else classify(classifier, images)
    target = ref[torch.isin(ref_labels, classes.unique())]
    target = target - centers[ref_labels[torch.isin(ref_labels, classes.unique())]]
    gen = torch.Generator().manual_seed(seed)
    floors = []
    for _ in range(5):
        pick = torch.cat([_draw(torch.nonzero(pool_labels == c)[:, 0], int((classes == c).sum()), gen)
                          for c in classes.unique()])
        floors.append(frechet_distance(pool[pick] - centers[pool_labels[pick]], target))
    return {"fd": round(frechet_distance(ours - centers[classes], target), 3),
            "fd_floor": round(float(np.mean(floors)), 3), "fd_dims": FD_DIMS}


def _draw(index: torch.Tensor, n: int, gen: torch.Generator) -> torch.Tensor:
    return index[torch.randperm(len(index), generator=gen)[:n]]


def _db(value: float) -> float | None:
    """PSNR rounded for JSON; None where it is infinite (sigma 0: the input is the clean image),
    since JSON has no Infinity."""
    return round(value, 2) if math.isfinite(value) else None


@torch.inference_mode()
def denoiser_quality(count: int = 1000, seed: int = 0, root: Path | None = None,
                     model_dir: Path | None = None) -> dict:
    net, cfg, _ = load_model("denoiser", root, model_dir)
    clean = load_mnist("test").images[:count]
    noise = torch.randn(clean.shape, generator=torch.Generator().manual_seed(seed))
    out = {}
    for s in SIGMA_GRID:
        noisy = add_noise_sigma(clean, s, noise=noise)
        den = torch.cat([net(b) for b in noisy.split(250)])
        out[str(s)] = {"denoised_psnr": _db(psnr(den, clean)), "noisy_psnr": _db(psnr(noisy, clean))}
    return {"psnr_by_sigma": out, "trained_sigma": cfg.sigma, "count": count, "seed": seed}


@torch.inference_mode()
def pure_noise_quality(count: int = 256, seed: int = 0, root: Path | None = None,
                       model_dir: Path | None = None) -> dict:
    net, _, _ = load_model("denoiser-pure-noise", root, model_dir)
    noise = torch.randn(count, 1, 28, 28, generator=torch.Generator().manual_seed(seed))
    out = net(noise)
    mean = mnist_mean_image()
    rms_each = ((out - mean) ** 2).flatten(1).mean(1).sqrt()
    spread = out.std(0).mean()
    return {
        "rms_to_mean_image": round(float(((out.mean(0) - mean) ** 2).mean().sqrt()), 4),
        "rms_to_mean_image_per_output": round(float(rms_each.mean()), 4),
        "output_std_across_inputs": round(float(spread), 4),
        "count": count,
    }


def kind_of_model(cfg) -> str:
    """Which measurement fits a trained model: the shipped name whose kind it is."""
    if cfg.objective in ("classifier", "ddpm", "flow"):
        return {"classifier": "classifier", "ddpm": "ddpm-class", "flow": "flow-class"}[cfg.objective]
    return "denoiser-pure-noise" if cfg.pure_noise else "denoiser"


def evaluate(name: str | None, root: Path | None = None, per_label: int = 20, device: str = "cpu",
             fd: bool = False, model_dir: Path | None = None) -> dict:
    """The quality of shipped model ``name``, or of the trained run in ``model_dir`` (measured as
    the shipped model of its kind ``name`` is, found from the run when None; the classifier that
    scores samples is the shipped one)."""
    if model_dir is not None and name is None:  # the kind of measurement the run's config asks for
        name = kind_of_model(load_model(None, model_dir=model_dir)[1])
    if name == "classifier":
        return classifier_accuracy(root, model_dir)
    if name == "denoiser":
        return denoiser_quality(root=root, model_dir=model_dir)
    if name == "denoiser-pure-noise":
        return pure_noise_quality(root=root, model_dir=model_dir)
    return sample_quality(name, per_label=per_label, root=root, device=device, fd=fd, model_dir=model_dir)

