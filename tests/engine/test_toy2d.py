"""The 2D playground's engine (``engine.toy2d``: ``data``, ``train``, ``sample``): point sets and a
user's points, the metrics re-derived on tiny inputs, the OT coupling, then real training on one
CPU thread (a few seconds): the loss falls, samples match the data without copying it, the
trajectories start from the noise and end at the samples, reflow is straighter than flow
matching, CFG steers towards the class; and ``python -m engine toy2d``.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from engine.cli import main
from engine.toy2d import data as toy2d
from engine.toy2d import sample as ts
from engine.toy2d import train as tt
from engine.toy2d.data import BOX, DATASETS, MAX_POINTS, PointsError, check_points, parse_csv


@pytest.fixture(scope="module", autouse=True)
def one_thread_block():
    """Everything here in one ``torch_threads(1)`` block: training's own blocks nest inside it, so
    sampling between them stays on one thread too (two fight over a busy 2-core machine)."""
    with tt.torch_threads(1):
        yield

FAST = tt.ToyConfig(steps=1200)  # half the default: enough to show the shapes on two moons


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ----------------------------------------------------------------------------- point sets


@pytest.mark.parametrize("name", list(DATASETS))
def test_point_sets_are_reproducible_and_in_the_box(name):
    d = toy2d.dataset(name)
    x, y = d.sample(3000, gen(5))
    x2, y2 = d.sample(3000, gen(5))
    assert x.shape == (3000, 2) and x.dtype == torch.float32
    assert torch.equal(x, x2) and not torch.equal(x, d.sample(3000, gen(6))[0])
    assert x.abs().max() < BOX and x.std(0).min() > 0.5  # spread over the box, not a dot
    if d.num_classes:
        assert torch.equal(y, y2) and set(y.tolist()) == set(range(d.num_classes))
        counts = torch.bincount(y, minlength=d.num_classes).float()
        assert counts.min() > 0.7 * counts.mean()  # classes about equally often
        centers = torch.stack([x[y == k].mean(0) for k in range(d.num_classes)])
        if name != "circles":  # concentric rings share their centre
            assert torch.cdist(centers, centers).fill_diagonal_(9).min() > 0.5  # classes lie apart
    else:
        assert y is None


def test_unknown_point_set():
    with pytest.raises(ValueError, match="moons"):
        toy2d.dataset("swiss-roll")


def csv_bytes(rows, header="x,y") -> bytes:
    return ((header + "\n" if header else "") + "\n".join(",".join(map(str, r)) for r in rows)).encode()


def test_csv_with_header_labels_and_rescaling():
    rng = np.random.default_rng(0)
    pts = rng.normal(size=(200, 2)) * [300, 20] + [1000, -50]
    labels = np.where(pts[:, 0] > 1000, 7, 3)
    cloud = parse_csv(csv_bytes([(*p, k) for p, k in zip(pts, labels, strict=True)], "X, Y, label"))
    assert cloud.points.shape == (200, 2) and cloud.num_classes == 2
    assert cloud.class_names == ("class 3", "class 7") and set(cloud.labels.tolist()) == {0, 1}
    assert torch.equal(cloud.labels, torch.from_numpy((labels == 7).astype(np.int64)))
    assert cloud.points.mean(0).abs().max() < 1e-4  # centred
    assert 1.0 < cloud.points.std(0).max().item() <= 1.51  # the wider axis to std 1.5 at most
    assert cloud.points.abs().max() < BOX  # and every point in the box, none clipped
    x, y = cloud.sample(500, gen())
    assert x.shape == (500, 2) and y.shape == (500,)


def test_csv_without_header_and_other_delimiters():
    rows = [(i, i % 7) for i in range(30)]
    assert parse_csv(csv_bytes(rows, header=None)).points.shape == (30, 2)
    assert parse_csv("\n".join(f"{a};{b}" for a, b in rows).encode()).points.shape == (30, 2)
    assert parse_csv("\n".join(f"{a}\t{b}" for a, b in rows).encode()).labels is None


@pytest.mark.parametrize("data, message", [
    (b"", "empty"),
    (b"x,y\n", "no points"),
    (b"x,y\n1,2\n", "1 point is too few"),
    (b"x,y\n" + b"1,2\n" * 5 + b"nan,3\n" + b"3,4\n" * 5, "row 6 .*not a finite number"),
    (b"x,y\n" + b"1,2\n3,inf\n" * 6, "not a finite number"),
    (b"a,b\n" + b"1,2\n3,4\n" * 6, "needs x and y"),
    (b"x,y\n" + b"1,2\nfoo,4\n" * 6, "'foo' is not a number"),
    (b"1,2,3,4\n" * 20, "rows have 4 values"),
    (b"x,y\n1,2\n3\n" + b"5,6\n" * 12, "row 2 has 1 value"),
    (b"\x89PNG\r\n\x1a\n\x00\x00", "not a text"),
    (b"x,y,label\n" + b"".join(b"%d,%d,%d\n" % (i, i * i, i) for i in range(20)), "at most 10"),
    (b"x,y,label\n" + b"".join(b"%d,%d,0.5\n" % (i, i * i) for i in range(20)), "whole numbers"),
    (b"x,y\n" + b"1,1\n" * 20, "same place"),
])
def test_bad_csv_gets_a_clear_message(data, message):
    with pytest.raises(PointsError, match=message):
        parse_csv(data)


def test_a_million_points_are_refused_before_parsing():
    data = b"x,y\n" + b"0,1\n" * 1_000_000  # 4 MB: under the byte cap, far over the point cap
    with pytest.raises(PointsError, match=f"{MAX_POINTS:,}"):
        parse_csv(data)
    with pytest.raises(PointsError, match="10 MB"):
        parse_csv(b"0" * (10 * 2**20 + 1))
    with pytest.raises(PointsError, match=f"{MAX_POINTS:,}"):
        check_points(np.zeros((MAX_POINTS + 1, 2)))


def test_points_outside_the_box_need_rescaling():
    with pytest.raises(PointsError, match="rescale"):
        check_points(np.random.default_rng(0).normal(size=(50, 2)) * 10)
    wide = np.random.default_rng(0).normal(size=(50, 2)) * 10
    assert check_points(wide, rescale=True).points.abs().max() <= BOX


# ----------------------------------------------------------------------------- metrics on tiny inputs


def test_mmd_is_zero_for_equal_sets_and_grows_with_a_shift():
    x = torch.randn(300, 2, generator=gen())
    assert ts.mmd(x, x) < 1e-3
    shifts = [ts.mmd(x + s, x) for s in (0.1, 0.5, 2.0)]
    assert shifts == sorted(shifts) and shifts[0] > 0.01
    # the formula, written out for one bandwidth
    h, y = 0.5, x + 0.3
    k = lambda a, b: torch.exp(-torch.cdist(a.double(), b.double()) ** 2 / (2 * h * h)).mean()  # noqa: E731
    assert math.isclose(ts.mmd(x, y, (h,)), math.sqrt(float(k(x, x) + k(y, y) - 2 * k(x, y))), rel_tol=1e-3)


def test_sliced_wasserstein_of_a_shift():
    """For a shift v, W1 along a unit direction u is |u . v|; over uniform directions its mean is
    2 |v| / pi."""
    x = torch.randn(500, 2, generator=gen(1))
    v = torch.tensor([0.6, -0.8])
    assert abs(ts.sliced_wasserstein(x + v, x, projections=4096) - 2 / math.pi) < 0.02
    assert ts.sliced_wasserstein(x, x) < 1e-9


def test_straightness_of_lines_and_zigzags():
    line = torch.linspace(0, 1, 11)[:, None, None] * torch.tensor([[3.0, 4.0]])  # (11, 1, 2)
    assert math.isclose(ts.straightness(line), 1.0, rel_tol=1e-9)
    zig = torch.tensor([[0.0, 0.0], [1.0, 1.0], [2.0, 0.0]])[:, None, :]
    assert math.isclose(ts.straightness(zig), math.sqrt(2), rel_tol=1e-9)


# ----------------------------------------------------------------------------- OT coupling


def test_ot_pairing_is_the_optimal_permutation():
    x0, x1 = torch.randn(6, 2, generator=gen(2)), torch.randn(6, 2, generator=gen(3)) * 2
    perm = tt.ot_pairing(x0, x1)
    assert sorted(perm.tolist()) == list(range(6))
    best = min(itertools.permutations(range(6)), key=lambda p: tt.transport_cost(x0, x1[list(p)]))
    assert math.isclose(tt.transport_cost(x0, x1[perm]), tt.transport_cost(x0, x1[list(best)]), rel_tol=1e-9)


def test_ot_coupling_lowers_the_transport_cost_of_a_batch():
    x0 = torch.randn(256, 2, generator=gen(4))
    x1, _ = toy2d.dataset("8gaussians").sample(256, gen(5))
    random_cost = tt.transport_cost(x0, x1)
    ot_cost = tt.transport_cost(x0, x1[tt.ot_pairing_blocks(x0, x1, 128)])
    assert ot_cost < 0.5 * random_cost, (ot_cost, random_cost)


# ----------------------------------------------------------------------------- training and sampling


@pytest.fixture(scope="module")
def moons_fm(one_thread_block):
    return tt.train(FAST, toy2d.dataset("moons"))


def test_loss_falls(moons_fm):
    ddpm = tt.train(replace(FAST, objective="ddpm", steps=400), toy2d.dataset("moons"))
    for losses in (moons_fm.losses, ddpm.losses):
        assert np.isfinite(losses).all()
        assert losses[-100:].mean() < 0.9 * losses[:100].mean()


def test_training_is_reproducible():
    cfg = replace(FAST, steps=30)
    a, b = tt.train(cfg, toy2d.dataset("moons")), tt.train(cfg, toy2d.dataset("moons"))
    assert np.array_equal(a.losses, b.losses)
    assert not np.array_equal(a.losses, tt.train(replace(cfg, seed=1), toy2d.dataset("moons")).losses)


def test_samples_match_the_data_and_are_not_copies(moons_fm):
    data = toy2d.dataset("moons")
    noise = torch.randn(2000, 2, generator=gen(1))
    samples = ts.sample(moons_fm.model, noise, "rk4", 20, record=False).final
    q = ts.quality(samples, data)
    assert q.mmd < 3 * q.mmd_floor, q
    assert ts.quality(noise, data).mmd > 5 * q.mmd  # far better than the noise it came from
    # copies would sit on the training points: the samples are as far from them as fresh data is
    seen = data.sample(4000, gen(0))[0]  # the first batches of training (same seed)
    near = ts.nearest_distance(samples, seen)
    fresh = ts.nearest_distance(ts.held_out(data, 2000, 3), seen)
    assert near.min() > 1e-5 and 0.5 < near.median() / fresh.median() < 2.5


def test_a_small_point_cloud_is_not_memorised():
    cloud = check_points(toy2d.dataset("moons").sample(40, gen(9))[0])
    model = tt.train(replace(FAST, steps=600), cloud).model
    samples = ts.sample(model, torch.randn(1000, 2, generator=gen(1)), "euler", 50, record=False).final
    near = ts.nearest_distance(samples, cloud.points)
    assert (near < 1e-3).float().mean() < 0.01 and near.median() > 0.01


def test_trajectory_starts_at_the_noise_and_ends_at_the_samples(moons_fm):
    ddpm = tt.train(replace(FAST, objective="ddpm", steps=50), toy2d.dataset("moons")).model
    noise = torch.randn(300, 2, generator=gen(7))
    for model, sampler, steps in ((moons_fm.model, "euler", 12), (moons_fm.model, "heun", 5),
                                  (ddpm, "ddpm", 10), (ddpm, "ddim", 8)):
        traj = ts.sample(model, noise, sampler, steps, generator=gen(8))
        final = ts.sample(model, noise, sampler, steps, generator=gen(8), record=False).final
        assert traj.x.shape == (steps + 1, 300, 2) and len(traj.times) == steps + 1
        assert torch.equal(traj.x[0], noise) and torch.allclose(traj.x[-1], final)
        assert traj.nfe == steps * (2 if sampler == "heun" else 1)
    assert ts.sample(ddpm, noise, "ddpm", 33).times[:2] == (990, 960)  # the course's strided grid


def test_samplers_check_their_model():
    model = tt.build(tt.ToyConfig())
    with pytest.raises(ValueError, match="euler"):
        ts.sample(model, torch.zeros(4, 2), "ddim", 5)
    with pytest.raises(ValueError, match="without classes"):
        ts.sample(model, torch.zeros(4, 2), "euler", 5, labels=1)
    with pytest.raises(ValueError, match="needs a class"):
        ts.sample(model, torch.zeros(4, 2), "euler", 5, guidance=2.0)
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        ts.sample(model, torch.zeros(4, 3), "euler", 5)


def test_reflow_is_straighter_than_flow_matching(moons_fm):
    data = toy2d.dataset("moons")
    cfg = replace(FAST, objective="reflow", steps=400, reflow_pairs=4096)
    reflow = tt.train(cfg, data, base=moons_fm.model)
    noise = torch.randn(1000, 2, generator=gen(11))
    fm_s = ts.straightness(ts.sample(moons_fm.model, noise, "euler", 40).x)
    re_s = ts.straightness(ts.sample(reflow.model, noise, "euler", 40).x)
    assert re_s < 1.05 < fm_s, (re_s, fm_s)
    # and one Euler step of reflow lands close to data, where one of flow matching does not
    one = {k: ts.quality(ts.sample(m, noise, "euler", 1).final, data).mmd
           for k, m in (("fm", moons_fm.model), ("reflow", reflow.model))}
    assert one["reflow"] < 0.5 * one["fm"], one


def test_velocity_field_is_the_model_for_a_flow(moons_fm):
    pts = torch.randn(9, 2, generator=gen(12))
    field = ts.velocity_field(moons_fm.model, pts, [0.0, 0.5, 1.0])
    assert field.shape == (3, 9, 2)
    with torch.inference_mode():
        assert torch.allclose(field[1], moons_fm.model(pts, torch.full((9,), 0.5)))
    ddpm = tt.build(replace(FAST, objective="ddpm"))
    assert torch.isfinite(ts.velocity_field(ddpm, pts, [990, 500, 0])).all()


def test_cfg_steers_towards_the_class():
    data = toy2d.dataset("moons")
    model = tt.train(replace(FAST, steps=800, num_classes=2), data).model
    noise = torch.randn(1000, 2, generator=gen(13))
    for label in (0, 1):
        x = ts.sample(model, noise, "euler", 30, labels=label, guidance=3.0, record=False).final
        own = ts.quality(x, data, labels=label).mmd
        other = ts.quality(x, data, labels=1 - label).mmd
        assert own < 0.5 * other, (label, own, other)
    free = ts.sample(model, noise, "euler", 30, labels=0, guidance=0.0, record=False).final
    guided = ts.sample(model, noise, "euler", 30, labels=0, guidance=5.0, record=False).final
    assert (guided - free).norm(dim=1).mean() > 0.1
    # reflow of a class model: straight for a class and for the null class (its own pairs)
    cfg = replace(FAST, objective="reflow", steps=300, reflow_pairs=2048, num_classes=2)
    reflow = tt.train(cfg, data, base=model).model
    for label in (None, 1):
        s = ts.straightness(ts.sample(reflow, noise, "euler", 30, labels=label).x)
        assert s < 1.05, (label, s)


def test_torch_threads_nest_and_the_last_restores(monkeypatch):
    import threading

    monkeypatch.setattr(tt, "_THREADS", {"lock": threading.Lock(), "users": 0, "base": 2})
    try:
        with tt.torch_threads(1):
            assert torch.get_num_threads() == 1
            with tt.torch_threads(1):  # another session's block, overlapping
                pass
            assert torch.get_num_threads() == 1  # not restored while one block still runs
            with tt.torch_threads(None):
                assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2  # the last one restores the process's count
    finally:
        torch.set_num_threads(1)  # this module's block


def test_config_checks():
    with pytest.raises(ValueError, match="objective"):
        tt.ToyConfig(objective="gan")
    with pytest.raises(ValueError, match="steps"):
        tt.ToyConfig(steps=0)


# ----------------------------------------------------------------------------- command line


def test_cli_writes_samples_data_and_trajectory(tmp_path, capsys):
    out = tmp_path / "m.npz"
    rc = main(["toy2d", "--dataset", "moons", "--objective", "fm", "--steps", "6", "--train-steps", "150",
               "--count", "300", "--seed", "0", "--out", str(out)])
    assert rc == 0
    text = capsys.readouterr().out
    assert "straightness" in text and "MMD" in text and "NFE 6" in text
    with np.load(out) as f:
        assert f["samples"].shape == (300, 2) and f["data"].shape == (300, 2)
        assert f["trajectory"].shape == (300, 7, 2)
        assert np.array_equal(f["trajectory"][:, -1], f["samples"])
        assert np.isfinite(f["data"]).all() and not np.allclose(f["data"], f["samples"])


def test_cli_cfg_and_csv(tmp_path, capsys):
    out = tmp_path / "c.npz"
    assert main(["toy2d", "--dataset", "8gaussians", "--objective", "ddpm", "--cfg", "3", "--label", "2",
                 "--steps", "5", "--train-steps", "60", "--count", "100", "--out", str(out)]) == 0
    with np.load(out) as f:
        assert f["trajectory"].shape == (100, 6, 2)
        angle = np.degrees(np.arctan2(f["data"][:, 1], f["data"][:, 0]))
        assert np.abs(angle - 90).max() < 30  # the held-out data are of class 2 (at 90 degrees)
    csv = tmp_path / "pts.csv"
    csv.write_bytes(csv_bytes([(i, (i * 7) % 11) for i in range(40)]))
    assert main(["toy2d", "--csv", str(csv), "--steps", "3", "--train-steps", "30", "--count", "50"]) == 0
    capsys.readouterr()


@pytest.mark.parametrize("args, message", [
    (["--cfg", "2"], "--cfg needs --label"),
    (["--dataset", "checkerboard", "--label", "0"], "no classes"),
    (["--label", "5"], r"--label must be in \[0, 1\]"),
    (["--objective", "fm", "--sampler", "ddim"], "does not fit"),
    (["--count", "30000"], "at most 20000"),
    (["--steps", "0"], "must be > 0"),
    (["--dataset", "swiss"], "invalid choice"),
])
def test_cli_bad_arguments_exit_2_with_one_line(args, message, capsys):
    assert main(["toy2d", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and __import__("re").search(message, err), err


def test_cli_bad_csv(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"a,b\n1,2\n")
    assert main(["toy2d", "--csv", str(bad)]) == 2
    assert "needs x and y" in capsys.readouterr().err
