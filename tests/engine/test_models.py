"""Metrics, the Part B UNets, and the model adapters (shapes, conditioning, errors)."""

import math

import numpy as np
import pytest
import torch

from engine.adapters import MNISTDDPM, MODEL_NAMES, FlowModel, ModelNotFound, load_builtin, model_path
from engine.config import PRESETS, build_model
from engine.metrics import mse, psnr, ssim
from engine.sampling import digit_labels
from engine.trajectory import to_unit
from engine.unet import ClassConditionalUNet, TimeConditionalUNet, UnconditionalUNet, inference_copy, one_hot

pytestmark = pytest.mark.usefixtures("one_thread")

# ----------------------------------------------------------------------------- metrics


def test_mse_and_psnr_known_values():
    a = torch.zeros(2, 1, 4, 4)
    b = torch.full((2, 1, 4, 4), 0.1)
    assert mse(a, b) == pytest.approx(0.01)
    assert psnr(a, b) == pytest.approx(20.0)
    assert psnr(a, b, data_range=2.0) == pytest.approx(20.0 + 20 * math.log10(2))
    assert psnr(a, a) == math.inf
    b[1] = 0.01  # over the whole batch: MSE (0.01 + 0.0001) / 2
    assert psnr(a, b) == pytest.approx(10 * math.log10(1 / 0.00505))


def test_ssim_identical_is_one_and_noise_lowers_it(make_gen):
    x = torch.rand(2, 1, 16, 16, generator=make_gen(0))
    assert ssim(x, x) == pytest.approx(1.0)
    assert ssim(x, (x + 0.3 * torch.randn(x.shape, generator=make_gen(1))).clamp(0, 1)) < 0.9


@pytest.mark.parametrize("fn", [mse, psnr, ssim])
def test_metrics_reject_shape_mismatch(fn):
    with pytest.raises(ValueError, match="differ in shape"):
        fn(torch.zeros(2, 1, 8, 8), torch.zeros(1, 1, 8, 8))


# ----------------------------------------------------------------------------- UNets


def test_unets_keep_the_image_shape():
    x = torch.randn(3, 1, 28, 28)
    with torch.no_grad():
        assert UnconditionalUNet(1, 8)(x).shape == x.shape
        assert TimeConditionalUNet(1, 8)(x, torch.rand(3)).shape == x.shape
        assert TimeConditionalUNet(1, 8)(x, torch.tensor(0.5)).shape == x.shape
        assert (
            ClassConditionalUNet(1, 10, 8)(x, torch.rand(3, 1), one_hot(torch.tensor([1, -1, 9]))).shape
            == x.shape
        )


def test_class_unet_output_depends_on_time_and_class():
    torch.manual_seed(0)
    net = ClassConditionalUNet(1, 10, 8).eval()
    x = torch.randn(2, 1, 28, 28)
    c = one_hot(torch.tensor([3, 3]))
    with torch.no_grad():
        base = net(x, torch.tensor([0.2, 0.2]), c)
        assert not torch.allclose(base, net(x, torch.tensor([0.9, 0.9]), c))
        assert not torch.allclose(base, net(x, torch.tensor([0.2, 0.2]), one_hot(torch.tensor([4, 4]))))


@pytest.mark.parametrize("shape", [(2, 1, 32, 32), (2, 3, 28, 28), (1, 28, 28)])
def test_unet_rejects_wrong_image_shapes(shape):
    with pytest.raises(ValueError, match=r"expected x of shape \(B, 1, 28, 28\)"):
        UnconditionalUNet(1, 8)(torch.zeros(shape))


def test_unet_rejects_wrong_time_and_class_shapes():
    x = torch.zeros(2, 1, 28, 28)
    with pytest.raises(ValueError, match="expected 2 time values, got 3"):
        TimeConditionalUNet(1, 8)(x, torch.zeros(3))
    with pytest.raises(ValueError, match=r"expected c of shape \(2, 10\)"):
        ClassConditionalUNet(1, 10, 8)(x, torch.zeros(2), torch.zeros(2, 9))


def test_one_hot():
    out = one_hot(torch.tensor([0, 9, -1]))
    assert out.shape == (3, 10) and out.dtype == torch.float32
    assert out[0, 0] == 1 and out[1, 9] == 1 and out[2].sum() == 0 and out.sum() == 2
    for bad in ([10], [-2]):
        with pytest.raises(ValueError, match=r"labels must be in \[-1, 9\]"):
            one_hot(torch.tensor(bad))


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_builds(name):
    from dataclasses import replace

    assert isinstance(build_model(replace(PRESETS[name], num_hiddens=4)), torch.nn.Module)


# ----------------------------------------------------------------------------- adapters


def test_model_path_and_missing_models(tmp_path):
    assert model_path("flow-class", tmp_path) == tmp_path / "flow-class" / "model.safetensors"
    with pytest.raises(ValueError, match="unknown model 'nope'"):
        model_path("nope")
    with pytest.raises(ModelNotFound, match="python -m engine train denoiser"):
        load_builtin("denoiser", tmp_path)
    assert set(MODEL_NAMES) >= set(PRESETS)


class Recorder(torch.nn.Module):
    def forward(self, x, t, c=None):
        self.t, self.c = t, c
        return torch.zeros_like(x)


def test_mnist_ddpm_adapter_scales_t_and_defaults_to_the_null_class():
    net = Recorder()
    ddpm = MNISTDDPM(net)
    ddpm(torch.zeros(2, 1, 28, 28), torch.tensor([999, 0]), None)
    torch.testing.assert_close(net.t, torch.tensor([1.0, 0.0]))
    assert torch.equal(net.c, torch.zeros(2, 10))
    assert torch.equal(ddpm.encode([2]), one_hot(torch.tensor([2])))


def test_flow_adapter_null_condition():
    from dataclasses import replace

    net = Recorder()
    flow = FlowModel(net, replace(PRESETS["flow-class"], num_hiddens=4))
    assert flow.class_conditioned
    flow(torch.zeros(3, 1, 28, 28), torch.zeros(3))
    assert torch.equal(net.c, torch.zeros(3, 10))


def _trained_like(net):
    """Non-trivial BatchNorm statistics and affine parameters, as after training."""
    g = torch.Generator().manual_seed(0)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.rand(m.num_features, generator=g) - 0.5)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.rand(m.num_features, generator=g) - 0.5)
    return net.eval()


@pytest.mark.parametrize("name", ["flow-class", "flow-time", "denoiser"])
def test_inference_copy_folds_batchnorm_and_keeps_the_output(name):
    from dataclasses import replace

    net = _trained_like(build_model(replace(PRESETS[name], num_hiddens=8)))
    g = torch.Generator().manual_seed(1)
    x, t = torch.randn(6, 1, 28, 28, generator=g), torch.rand(6, generator=g)
    args = {"unconditional": (x,), "time": (x, t), "class": (x, t, one_hot(torch.arange(6) % 10))}[
        PRESETS[name].arch
    ]
    with torch.no_grad():
        ref = net(*args)
        fused = inference_copy(net)
        assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fused.modules())
        assert any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules()), "the original is untouched"
        torch.testing.assert_close(fused(*args), ref, rtol=1e-4, atol=1e-4)
        half = inference_copy(net, torch.bfloat16)
        out = half(*(a.bfloat16() for a in args)).float()
    assert half.training is False and not any(p.requires_grad for p in half.parameters())
    err = (out - ref).abs().max() / ref.abs().max()
    assert err < 0.05, f"bf16 copy deviates by {err:.3f} of the output range"


def test_adapters_run_the_bf16_copy_close_to_fp32():
    from dataclasses import replace

    cfg = replace(PRESETS["flow-class"], num_hiddens=8)
    net = _trained_like(build_model(cfg))
    x = torch.randn(4, 1, 28, 28, generator=torch.Generator().manual_seed(2))
    c = one_hot(torch.tensor([1, 2, 3, -1]))
    ref = FlowModel(net, cfg)(x, torch.full((4,), 0.3), c)
    fast = FlowModel(net, cfg, torch.bfloat16)
    out = fast(x, torch.full((4,), 0.3), c)
    assert out.dtype == torch.float32 and fast.net is net
    assert (out - ref).abs().max() / ref.abs().max() < 0.05
    eps_ref = MNISTDDPM(net)(x, torch.tensor([500] * 4), c)
    eps = MNISTDDPM(net, amp=torch.bfloat16)(x, torch.tensor([500] * 4), c)
    assert (eps - eps_ref).abs().max() / eps_ref.abs().max() < 0.05


def test_sampling_helpers():
    assert digit_labels([0, 7], 2).tolist() == [0, 0, 7, 7]
    out = to_unit(torch.tensor([-2.0, -1.0, 0.0, 1.0, 3.0]))
    assert out.dtype == np.float32 and out.tolist() == [0.0, 0.0, 0.5, 1.0, 1.0]
    assert to_unit(np.array([-0.5, 0.25, 2.0]), (0.0, 1.0)).tolist() == [0.0, 0.25, 1.0]
