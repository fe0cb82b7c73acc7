"""The 2D playground's learned density (engine/toy2d/density.py, ``toy2d --density-out``): exact in
2D, it integrates to one over the box (less the mass the model puts outside it), and the model
finds held-out data far likelier than uniform points."""

import numpy as np
import pytest
import torch

from engine.cli import main
from engine.toy2d.data import BOX, dataset
from engine.toy2d.density import density_grid, log_density, mass, uniform_log_density
from engine.toy2d.sample import held_out, sample
from engine.toy2d.train import ToyConfig, build, train


@pytest.fixture(scope="module")
def moons_flow(one_thread_module):
    data = dataset("moons")
    return train(ToyConfig(objective="fm", steps=800, seed=0), data, threads=None).model, data


def test_density_integrates_to_the_mass_inside_the_box(moons_flow):
    model, _ = moons_flow
    x, y, density = density_grid(model, size=48)
    assert x.shape == y.shape == (48,) and density.shape == (48, 48) and (density >= 0).all()
    noise = torch.randn(4000, 2, generator=torch.Generator().manual_seed(1))
    samples = sample(model, noise, "rk4", 16, None, None, torch.Generator().manual_seed(2)).final
    inside = float((samples.abs() <= BOX).all(1).float().mean())
    assert mass(density) == pytest.approx(inside, abs=0.03)


def test_held_out_data_is_likelier_than_uniform_points(moons_flow):
    model, data = moons_flow
    held = held_out(data, 300, 5)
    uniform = (torch.rand(300, 2, generator=torch.Generator().manual_seed(6)) * 2 - 1) * BOX
    data_lp, uniform_lp = log_density(model, held).mean(), log_density(model, uniform).mean()
    assert data_lp > uniform_log_density() > uniform_lp


def test_ddpm_has_no_ode_density_here():
    with pytest.raises(ValueError, match="flow model"):
        log_density(build(ToyConfig(objective="ddpm")), torch.zeros(2, 2))


def test_cli_writes_the_density_grid(tmp_path, capsys, one_thread):
    out = tmp_path / "density.npz"
    assert main(["toy2d", "--dataset", "8gaussians", "--train-steps", "200", "--count", "200",
                 "--density-out", str(out)]) == 0
    assert "mass" in capsys.readouterr().out
    with np.load(out) as f:
        assert set(f.files) == {"x", "y", "density"} and f["density"].shape == (len(f["y"]), len(f["x"]))
    assert main(["toy2d", "--objective", "ddpm", "--density-out", str(out)]) == 2
    assert "needs a flow objective" in capsys.readouterr().err
