"""Exact likelihood (engine/likelihood.py) against densities known in closed form.

Gaussian data x_1 ~ N(mu, S) with noise x_0 ~ N(0, I) and the course's path x_t = (1 - t) x_0 +
t x_1 has Gaussian marginals N(t mu, (1 - t)^2 I + t^2 S), and the marginal velocity that
transports them is linear: u(x, t) = mu + A_t (x - t mu) with A_t = (t S - (1 - t) I) C_t^-1.
Integrating that field back from x_1 must give log N(x_1; mu, S) exactly (up to the solver)."""

import math

import pytest
import torch

from engine.likelihood import bits_per_dim, dequantize, log_likelihood


def gaussian_field(mu: torch.Tensor, cov: torch.Tensor):
    d = mu.numel()
    eye = torch.eye(d, dtype=torch.float64)

    def u(x, t):
        out = []
        for xi, ti in zip(x.double().flatten(1), t.double(), strict=True):
            c = (1 - ti) ** 2 * eye + ti**2 * cov
            a = (ti * cov - (1 - ti) * eye) @ torch.linalg.inv(c)
            out.append(mu + a @ (xi - ti * mu))
        return torch.stack(out).to(x.dtype).reshape(x.shape)

    return u


def true_logp(x, mu, cov):
    dist = torch.distributions.MultivariateNormal(mu, covariance_matrix=cov)
    return dist.log_prob(x.double().flatten(1))


def test_exact_divergence_recovers_a_2d_gaussian_density():
    mu = torch.tensor([1.0, -0.5], dtype=torch.float64)
    cov = torch.tensor([[0.5, 0.3], [0.3, 0.4]], dtype=torch.float64)
    x = torch.tensor([[1.0, -0.5], [0.2, 0.1], [2.0, 0.0]])
    got = log_likelihood(gaussian_field(mu, cov), x, probes=None, method="rk4")
    assert torch.allclose(got.logp.double(), true_logp(x, mu, cov), atol=2e-3)
    assert (got.logp_se == 0).all()
    assert got.nfe == 32 * 4


def test_hutchinson_is_exact_on_a_diagonal_jacobian_and_unbiased_otherwise():
    """Rademacher probes: e^T D e = trace(D) for a diagonal D; for a full covariance the per-probe
    estimates scatter around the truth within a few standard errors."""
    g = torch.Generator().manual_seed(0)
    d = 16
    mu = torch.linspace(-1, 1, d, dtype=torch.float64)
    diag = torch.diag(torch.linspace(0.2, 1.5, d, dtype=torch.float64))
    x = (mu + torch.randn(4, d, generator=g, dtype=torch.float64) * 0.7).float().reshape(4, 1, 4, 4)
    got = log_likelihood(gaussian_field(mu, diag), x, probes=3, generator=g)
    assert torch.allclose(got.logp.double(), true_logp(x, mu, diag), atol=5e-3)
    assert got.logp_se.max() < 1e-3

    q = torch.randn(d, d, generator=g, dtype=torch.float64)
    full = q @ q.T / d + 0.3 * torch.eye(d, dtype=torch.float64)
    got = log_likelihood(gaussian_field(mu, full), x, probes=64, generator=g)
    z = (got.logp.double() - true_logp(x, mu, full)) / got.logp_se.double()
    assert (got.logp_se > 0).all() and z.abs().max() < 4, z


def test_a_finer_grid_agrees_and_a_seed_repeats():
    mu = torch.zeros(2, dtype=torch.float64)
    cov = torch.diag(torch.tensor([0.1, 2.0], dtype=torch.float64))
    x = torch.tensor([[0.3, -1.0]])
    u = gaussian_field(mu, cov)
    coarse = log_likelihood(u, x, torch.linspace(0, 1, 9), probes=None).logp
    fine = log_likelihood(u, x, torch.linspace(0, 1, 65), probes=None).logp
    assert abs(float(fine - true_logp(x, mu, cov))) < abs(float(coarse - true_logp(x, mu, cov))) + 1e-6
    a = log_likelihood(u, x, probes=2, generator=torch.Generator().manual_seed(5)).per_probe
    b = log_likelihood(u, x, probes=2, generator=torch.Generator().manual_seed(5)).per_probe
    assert torch.equal(a, b)


def test_dequantization_and_bits_per_dim():
    g = torch.Generator().manual_seed(0)
    k = torch.arange(256).float().reshape(1, 1, 16, 16)
    y = dequantize(k / 255, g)
    assert ((y * 256).floor() == k).all() and (y < 1).all()
    # a uniform density on [0, 1)^D is uniform on [0, 256)^D: exactly 8 bits a pixel
    assert bits_per_dim(torch.zeros(1), 784).item() == pytest.approx(8.0)
    # a model working in [-1, 1] has density 2^-D times the [0, 1] one's: same bits/dim
    assert bits_per_dim(torch.tensor([-784 * math.log(2)]), 784, (-1.0, 1.0)).item() == pytest.approx(8.0)


def test_bad_solver_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown solver"):
        log_likelihood(lambda x, t: x, torch.zeros(1, 2), method="rk45")


def test_on_step_reports_each_step_and_can_stop_the_integration():
    """The page's progress bar: one call per ODE step; raising there (the user moved on) stops it."""
    seen = []
    log_likelihood(lambda x, t: -x, torch.zeros(2, 2), torch.linspace(0, 1, 6), probes=None,
                   on_step=lambda done, total: seen.append((done, total)))
    assert seen == [(k, 5) for k in range(1, 6)]

    class Stop(Exception):
        pass

    def stop(done, total):
        if done == 2:
            raise Stop

    with pytest.raises(Stop):
        log_likelihood(lambda x, t: -x, torch.zeros(2, 2), torch.linspace(0, 1, 6), probes=None, on_step=stop)


# ----------------------------------------------------------------------------- the CLI on the shipped flow


def nll_json(capsys, *args) -> dict:
    import json

    from engine.cli import main

    assert main(["nll", "--count", "2", "--steps", "6", "--probes", "2", "--json", *args]) == 0
    return json.loads(capsys.readouterr().out)


def test_cli_scores_test_digits_repeatably_and_noise_worse(capsys, tmp_path, one_thread):
    import numpy as np

    digits = nll_json(capsys, "--seed", "3")
    assert set(digits) >= {"bits_per_dim", "probe_se", "sample_se", "per_image", "count", "steps", "probes"}
    assert digits["count"] == 2 and math.isfinite(digits["bits_per_dim"]) and 0 < digits["bits_per_dim"] < 8
    assert digits["probe_se"] > 0
    assert nll_json(capsys, "--seed", "3")["per_image"] == digits["per_image"]  # same seed, same number
    noise = np.random.default_rng(0).random((2, 1, 28, 28)).astype(np.float32)
    np.savez(tmp_path / "noise.npz", images=noise)
    scored = nll_json(capsys, "--npz", str(tmp_path / "noise.npz"))
    assert scored["source"].endswith("noise.npz") and scored["bits_per_dim"] > digits["bits_per_dim"] + 2


@pytest.mark.parametrize("content, message", [
    (b"not a zip", "is not an .npz"),
    ("no-images", "has no 'images' array"),
    ("wrong-shape", "must have shape"),
    ("out-of-range", "finite values in [0, 1]"),
])
def test_cli_rejects_bad_npz_with_one_line(capsys, tmp_path, content, message):
    import numpy as np

    from engine.cli import main

    path = tmp_path / "in.npz"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        arrays = {"no-images": {"x": np.zeros(3)}, "wrong-shape": {"images": np.zeros((2, 28, 27))},
                  "out-of-range": {"images": np.full((1, 1, 28, 28), 2.0)}}[content]
        np.savez(path, **arrays)
    assert main(["nll", "--npz", str(path)]) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
