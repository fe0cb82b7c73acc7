"""Planted mistakes for tests/engine/test_check_catalogue.py: each edit rewrites the line of
``correct.py`` that carries the marker ``# plant: NAME`` (old text -> new text on that line)."""

FILE = "correct.py"

# (marker, old, new): the edits of one planted file, applied to every line with the marker
PLANTS = {
    "forward-missing-sqrt": [
        (
            "forward",
            "torch.sqrt(alpha_cumprod) * im + torch.sqrt(1 - alpha_cumprod) * noise",
            "alpha_cumprod * im + (1 - alpha_cumprod) * noise",
        )
    ],
    "forward-signal-abar": [("forward", "torch.sqrt(alpha_cumprod) * im", "alpha_cumprod * im")],
    "forward-noise-linear": [
        ("forward", "torch.sqrt(1 - alpha_cumprod) * noise", "(1 - alpha_cumprod) * noise")
    ],
    "forward-swapped": [
        (
            "forward",
            "torch.sqrt(alpha_cumprod) * im + torch.sqrt(1 - alpha_cumprod) * noise",
            "torch.sqrt(1 - alpha_cumprod) * im + torch.sqrt(alpha_cumprod) * noise",
        )
    ],
    "x0-missing-sqrt": [
        (
            "x0",
            "torch.sqrt(1 - alpha_cumprod) * noise_est) / torch.sqrt(alpha_cumprod)",
            "(1 - alpha_cumprod) * noise_est) / alpha_cumprod",
        )
    ],
    "t-swapped": [
        ("abar_t", "alphas_cumprod[t]", "alphas_cumprod[prev_t]"),
        ("abar_prev", "alphas_cumprod[prev_t]", "alphas_cumprod[t]"),
    ],
    "missing-variance": [
        ("variance", "add_variance(predicted_variance, t, pred_prev_image)", "pred_prev_image")
    ],
    "net-sees-prev": [
        ("net_t", "(image, t,", "(image, prev_t,"),
        ("net_t", "(flipped, t,", "(flipped, prev_t,"),
    ],
    "skip-first": [("loop", "range(i_start, ", "range(i_start + 1, ")],
    "stop-early": [("loop", "len(timesteps) - 1)", "len(timesteps) - 2)")],
    "cfg-sign": [
        (
            "cfg",
            "uncond_noise_est + scale * (noise_est - uncond_noise_est)",
            "noise_est + scale * (uncond_noise_est - noise_est)",
        )
    ],
    "cfg-base-cond": [
        (
            "cfg",
            "uncond_noise_est + scale * (noise_est - uncond_noise_est)",
            "noise_est + scale * (noise_est - uncond_noise_est)",
        )
    ],
    "cfg-no-base": [
        (
            "cfg",
            "uncond_noise_est + scale * (noise_est - uncond_noise_est)",
            "scale * (noise_est - uncond_noise_est)",
        )
    ],
    "cfg-scale-cond": [
        (
            "cfg",
            "uncond_noise_est + scale * (noise_est - uncond_noise_est)",
            "uncond_noise_est + scale * noise_est",
        )
    ],
    "flip-not-undone": [("flip_back", "torch.flip(eps_2, dims=[-2])", "eps_2")],
    "flip-axis": [("flip_view", "dims=[-2]", "dims=[-1]"), ("flip_back", "dims=[-2]", "dims=[-1]")],
    "low-high-swapped": [
        ("low", "gaussian_blur(eps_1,", "gaussian_blur(eps_2,"),
        ("high", "eps_2 - TF.gaussian_blur(eps_2,", "eps_1 - TF.gaussian_blur(eps_1,"),
    ],
    "x1-fed": [("input", "unet(x_t, t)", "unet(x1, t)")],
    "target-reversed": [("target", "x1 - x0", "x0 - x1")],
    "path-reversed": [("path", "(1 - tb) * x0 + tb * x1", "tb * x0 + (1 - tb) * x1")],
    "time-reversed": [("time", "i / num_ts)", "1 - i / num_ts)")],
    "time-reversed-minus": [("time", "i / num_ts)", "1 - i / num_ts)"), ("step", "x + dt *", "x - dt *")],
    "step-size-one": [("step", "x + dt * unet(x, t)", "x + unet(x, t)")],
    "step-size-linspace": [("time", "i / num_ts)", "i / (num_ts - 1))")],
    "flow-t-end": [("time", "i / num_ts)", "(i + 1) / num_ts)")],
}

# planted name -> {function: expected code}
LOOPS = ("iterative_denoise", "iterative_denoise_cfg", "visual_anagrams", "make_hybrids")
GUIDED = LOOPS[1:]
EXPECTED = {
    "forward-missing-sqrt": {"forward": "missing-sqrt"},
    "forward-signal-abar": {"forward": "missing-sqrt"},
    "forward-noise-linear": {"forward": "missing-sqrt"},
    "forward-swapped": {"forward": "coefficients-swapped"},
    "x0-missing-sqrt": dict.fromkeys(LOOPS, "missing-sqrt"),
    "t-swapped": dict.fromkeys(LOOPS, "t-swapped"),
    "missing-variance": dict.fromkeys(LOOPS, "missing-variance"),
    "net-sees-prev": dict.fromkeys(LOOPS, "t-off-by-one"),
    "skip-first": dict.fromkeys(LOOPS, "t-off-by-one"),
    "stop-early": dict.fromkeys(LOOPS, "t-off-by-one"),
    "cfg-sign": dict.fromkeys(GUIDED, "cfg-sign"),
    "cfg-base-cond": dict.fromkeys(GUIDED, "cfg-scale-wrong-term"),
    "cfg-no-base": dict.fromkeys(GUIDED, "cfg-scale-wrong-term"),
    "cfg-scale-cond": dict.fromkeys(GUIDED, "cfg-scale-wrong-term"),
    "flip-not-undone": {"visual_anagrams": "flip-not-undone"},
    "flip-axis": {"visual_anagrams": "flip-axis"},
    "low-high-swapped": {"make_hybrids": "low-high-swapped"},
    "x1-fed": {"flow_matching_loss": "x1-fed"},
    "target-reversed": {"flow_matching_loss": "target-reversed"},
    "path-reversed": {"flow_matching_loss": "path-reversed"},
    "time-reversed": {"flow_sample": "time-reversed"},
    "time-reversed-minus": {"flow_sample": "time-reversed"},
    "step-size-one": {"flow_sample": "step-size"},
    "step-size-linspace": {"flow_sample": "step-size"},
    "flow-t-end": {"flow_sample": "t-off-by-one"},
}

# plants that touch different functions, combined into one file each (fewer sandbox runs)
BUNDLES = [
    ["forward-missing-sqrt", "x0-missing-sqrt", "x1-fed", "time-reversed"],
    ["forward-signal-abar", "t-swapped", "target-reversed", "step-size-one"],
    ["forward-noise-linear", "missing-variance", "path-reversed", "flow-t-end"],
    ["forward-swapped", "net-sees-prev", "time-reversed-minus"],
    ["skip-first", "step-size-linspace"],
    ["stop-early"],
    ["cfg-sign"],
    ["cfg-base-cond"],
    ["cfg-no-base"],
    ["cfg-scale-cond"],
    ["flip-not-undone", "low-high-swapped"],
    ["flip-axis"],
]


def plant(source: str, names) -> str:
    """``source`` with the edits of every planted name in ``names``."""
    lines = source.splitlines(keepends=True)
    for name in names:
        for marker, old, new in PLANTS[name]:
            hits = [i for i, line in enumerate(lines) if f"# plant: {marker}" in line and old in line]
            if not hits:
                raise AssertionError(f"plant {name}: no line marked {marker!r} holds {old!r}")
            for i in hits:
                lines[i] = lines[i].replace(old, new)
    return "".join(lines)


def expected(names) -> dict:
    out = {}
    for name in names:
        out |= EXPECTED[name]
    return out
