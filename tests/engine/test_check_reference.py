"""Check your code, in-process parts (no sandbox): the notebook-shaped reference agrees with the
engine's own maths on a small input; the IF-shaped ``stage_1`` wrapper, ``add_variance``, the
prompt embeddings, the blur, the statistics of ``forward``, the divergence finder, the contract's
parsing and the starter file.

The engine's samplers are called through ``engine.samplers.sample`` by name, the rest with keyword
arguments only: their signatures are the engine's business, the maths must agree.
"""

from __future__ import annotations

import ast
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from engine.check import CATALOGUE, CODES, NAMES, starter_text
from engine.check import reference as ref
from engine.check.compare import divergence, steps_of
from engine.check.contract import SPECS, course_timesteps, parse_map, parse_only
from engine.check.judge import noise_stats
from engine.check.lab import Lab, LabSpec, PromptBook, Recorder, make_add_variance, notebook_globals
from engine.check.mutations import accepted, mutations
from engine.check.reference import CORRECT, Variant, forward_coefficients, gaussian_blur

pytestmark = pytest.mark.usefixtures("one_thread_module")


@pytest.fixture(scope="module")
def lab():
    return Lab(LabSpec("tiny"))


def env_for(lab, seed=0):
    holder = {"generator": torch.Generator().manual_seed(seed)}
    return SimpleNamespace(**notebook_globals(lab, Recorder(), holder, course_timesteps()))


def engine_model(lab):
    """The tiny lab's noise model in the engine's shape: model(x, t, cond) with cond = embeddings."""
    return lambda x, t, cond: lab.eps_model(x, t, cond)


def test_course_timesteps_are_the_strided_list():
    ts = course_timesteps()
    assert ts[0] == 990 and ts[-1] == 0 and len(ts) == 34
    assert all(a - b == 30 for a, b in zip(ts, ts[1:], strict=False))


def test_ddpm_loops_agree_with_engine(lab, schedule):
    from engine.guidance import CFGModel
    from engine.samplers import sample

    g = torch.Generator().manual_seed(1)
    x = torch.randn(1, *lab.image_shape, generator=g)
    e1, eu = lab.prompts.encode(3), lab.prompts.encode(10)
    plain = ref.iterative_denoise(env_for(lab, 7), CORRECT, x, 0, e1, course_timesteps())
    ours = sample(
        engine_model(lab),
        x,
        "ddpm",
        None,
        cond=e1,
        generator=torch.Generator().manual_seed(7),
        record=False,
        schedule=schedule,
    ).final
    assert torch.allclose(plain, ours, atol=2e-4), (plain - ours).abs().max()
    guided = ref.iterative_denoise_cfg(env_for(lab, 7), CORRECT, x, 0, e1, eu, course_timesteps(), 7.0)
    cfg = CFGModel(engine_model(lab), eu, 7.0)
    ours = sample(
        cfg,
        x,
        "ddpm",
        None,
        cond=e1,
        generator=torch.Generator().manual_seed(7),
        record=False,
        schedule=schedule,
    ).final
    assert torch.allclose(guided, ours, atol=2e-3 * ours.abs().max()), (guided - ours).abs().max()


def test_illusions_agree_with_engine(lab, schedule):
    from engine.guidance import CFGModel
    from engine.illusions import AnagramModel, HybridModel
    from engine.samplers import sample

    x = torch.randn(1, *lab.image_shape, generator=torch.Generator().manual_seed(2))
    e1, e2, eu = (lab.prompts.encode(k) for k in (6, 9, 10))
    cfg = CFGModel(engine_model(lab), eu, 7.0)
    mean_var = Variant(variance_from="mean")  # the engine averages the views' variances
    mine = ref.visual_anagrams(env_for(lab, 3), mean_var, x, 0, e1, e2, eu, course_timesteps(), 7.0)
    theirs = sample(
        AnagramModel(cfg, [e1, e2], ["identity", "flip"]),
        x,
        "ddpm",
        None,
        cond=e1,
        generator=torch.Generator().manual_seed(3),
        record=False,
        schedule=schedule,
    ).final
    assert torch.allclose(mine, theirs, atol=2e-3 * theirs.abs().max()), (mine - theirs).abs().max()
    k = 2 * ((lab.image_shape[1] - 1) // 2) + 1  # the engine caps the kernel at the image size
    mine = ref.make_hybrids(
        env_for(lab, 4), CORRECT, x, 0, e1, e2, eu, course_timesteps(), 7.0, kernel_size=k
    )
    theirs = sample(
        HybridModel(cfg, e1, e2, k, 2.0),
        x,
        "ddpm",
        None,
        cond=e1,
        generator=torch.Generator().manual_seed(4),
        record=False,
        schedule=schedule,
    ).final
    assert torch.allclose(mine, theirs, atol=2e-3 * theirs.abs().max()), (mine - theirs).abs().max()


def test_flow_agrees_with_engine(lab):
    from engine.flow import flow_matching_loss
    from engine.samplers import sample

    g = torch.Generator().manual_seed(5)
    x1, x0, t = (
        torch.rand(4, *lab.flow_shape, generator=g),
        torch.randn(4, *lab.flow_shape, generator=g),
        torch.rand(4),
    )
    unet = lab.flow_unet(Recorder())
    mine = ref.flow_matching_loss(None, CORRECT, unet, x1, x0, t)
    theirs = flow_matching_loss(velocity_model=lambda x, s: lab.flow_net(x, s), x_1=x1, noise=x0, t=t)
    assert torch.allclose(mine, theirs, rtol=1e-5)
    mine = ref.flow_sample(None, CORRECT, unet, x0, 10)
    theirs = sample(lambda x, s, c=None: lab.flow_net(x, s), x0, "euler", 10, record=False).final
    assert torch.allclose(mine, theirs.float(), atol=1e-5)


def test_add_variance_is_diffusers_learned_range(lab, schedule):
    from engine.denoise import posterior_variance

    ts = course_timesteps()
    v = torch.rand(1, 3, 4, 4) * 2 - 1
    g1, g2 = torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)
    out = make_add_variance(lab.alphas_cumprod, ts, {"generator": g1})(v, 690, torch.zeros(1, 3, 4, 4))
    var = posterior_variance(690, 660, schedule, predicted=v)
    assert torch.allclose(out, var.sqrt() * torch.randn(1, 3, 4, 4, generator=g2), rtol=1e-4)


def test_stage_1_takes_what_the_notebook_passes(lab):
    rec = Recorder()
    stage_1 = lab.stage_1(rec)
    x, e = torch.randn(2, *lab.image_shape), lab.prompts.encode(1)
    a = stage_1.unet(x, 500, encoder_hidden_states=e, return_dict=False)[0]
    b = stage_1.unet(x, torch.tensor([500]), encoder_hidden_states=torch.cat([e, e])).sample
    c = stage_1.unet(x, torch.tensor(500), e, return_dict=False)[0]
    assert a.shape == (2, 2 * lab.image_shape[0], *lab.image_shape[1:])
    assert torch.equal(a, b) and torch.equal(a, c)
    assert [t for t, _ in rec.calls] == [500.0] * 3
    assert stage_1.scheduler.alphas_cumprod.shape == (1000,)
    with pytest.raises(ValueError, match="timesteps"):
        stage_1.unet(x, torch.tensor([1, 2, 3]), encoder_hidden_states=e)


def test_prompt_embeddings_are_opaque_but_decode():
    book = PromptBook()
    e = torch.cat([book.encode(k) for k in (0, 9, 10)])
    codes = book.decode(e)
    assert torch.allclose(codes, torch.eye(11)[[0, 9, 10]], atol=1e-5)
    assert e.shape == (3, 8, 16) and not torch.equal(e[0], e[1])


def test_blur_is_torchvisions():
    from torchvision.transforms.v2 import functional as TF

    x = torch.randn(1, 3, 28, 28)
    assert torch.allclose(gaussian_blur(x, 33, 2), TF.gaussian_blur(x, [33, 33], [2.0, 2.0]), atol=1e-5)


def test_forward_statistics_tell_the_coefficients_apart(lab):
    x0 = lab.clean_images(16, 0)
    abar = float(lab.alphas_cumprod[500])
    g = torch.Generator().manual_seed(0)
    good = forward_coefficients(abar)
    y = (good[0] * x0 + good[1] * torch.randn(x0.shape, generator=g)).numpy()
    assert noise_stats(y, x0.numpy(), *good)["ok"]
    wrong = forward_coefficients(abar, Variant(fwd_signal="abar", fwd_noise="linear"))
    assert not noise_stats(y, x0.numpy(), *wrong)["ok"]
    shared = (good[0] * x0 + good[1] * torch.randn(1, *x0.shape[1:], generator=g)).numpy()
    assert not noise_stats(shared, x0.numpy(), *good)["ok"]


def test_divergence_names_the_step():
    a = np.zeros((1, 1, 2, 2), np.float32)
    ref_calls = [(990.0, a), (960.0, a), (930.0, a)]
    student = [(990.0, a), (960.0, a + 0.31), (930.0, a)]
    k, sentence = divergence(steps_of(student), steps_of(ref_calls), 0)
    assert k == 1 and sentence == "step 1, t = 960: your x_t differs by 0.31 (max)"
    k, sentence = divergence(steps_of([(960.0, a)]), steps_of(ref_calls), 10)
    assert k == 0 and "t = 960" in sentence and "t = 990" in sentence


def test_catalogue_codes_and_accepted_variants():
    required = {
        "missing-sqrt",
        "t-off-by-one",
        "t-swapped",
        "missing-variance",
        "cfg-sign",
        "cfg-scale-wrong-term",
        "flip-not-undone",
        "low-high-swapped",
        "x1-fed",
        "target-reversed",
        "time-reversed",
        "step-size",
    }
    assert required <= {m.code for m in CATALOGUE} <= set(CODES)
    assert all(set(m.functions) <= set(NAMES) for m in CATALOGUE)
    assert accepted("iterative_denoise")[0] == CORRECT
    assert len(accepted("visual_anagrams", variance_matters=False)) < len(accepted("visual_anagrams"))
    assert all(v != CORRECT for _, v in mutations("make_hybrids"))


def test_parse_map_and_only():
    assert parse_map(["my_fwd=forward", "sample_it=flow_sample,"]) == {
        "forward": "my_fwd",
        "flow_sample": "sample_it",
    }
    assert parse_only("flow_sample,forward") == ("forward", "flow_sample")
    for bad in (["forward"], ["x=nope"], ["1x=forward"]):
        with pytest.raises(ValueError):
            parse_map(bad)
    with pytest.raises(ValueError):
        parse_only("forwards")


def test_starter_file_has_every_signature_and_no_bodies():
    tree = ast.parse(starter_text())
    defs = {f.name: f for f in tree.body if isinstance(f, ast.FunctionDef)}
    assert set(NAMES) <= set(defs) and "build_unet" in defs
    for name in NAMES:
        body = defs[name].body
        assert len(body) == 1 and isinstance(body[0].value, ast.Constant)  # the docstring only
        params = [a.arg for a in defs[name].args.args]
        assert SPECS[name].signature.startswith(f"{name}({params[0]}")
