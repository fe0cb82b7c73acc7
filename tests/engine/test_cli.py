"""`python -m engine train|sample|denoise|info` as a user runs it: real subprocesses.

Tiny models (num_hiddens 8, 256 images, 1 epoch) are trained once per session into a temporary
models folder; independent commands run concurrently to keep the wall time down.
"""

import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
TINY = ["--num-hiddens", "8", "--train-count", "256", "--epochs", "1", "--threads", "1", "--no-progress"]


def engine_cmd(*args) -> list[str]:
    return [sys.executable, "-m", "engine", *map(str, args)]


def run_many(cmds: dict[str, list[str]], timeout=300, parallel=3) -> dict[str, subprocess.CompletedProcess]:
    def one(cmd):
        return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)

    with ThreadPoolExecutor(parallel) as pool:
        futures = {k: pool.submit(one, c) for k, c in cmds.items()}
        return {k: f.result() for k, f in futures.items()}


def assert_ok(res: subprocess.CompletedProcess):
    assert res.returncode == 0, f"exit {res.returncode}\nstdout: {res.stdout}\nstderr: {res.stderr}"
    assert "Traceback" not in res.stderr


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory) -> Path:
    """The denoiser trained through the CLI, the others in-process meanwhile (without flow-class's
    epoch-1 snapshot of 40 digits x 300 Euler steps: that run is the slow test below)."""
    root = tmp_path_factory.mktemp("models")
    cmds = {"denoiser": engine_cmd("train", "denoiser", *TINY, "--lr", "1e-3", "--out", root / "denoiser")}
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(run_many, cmds)
        from dataclasses import replace

        from engine.config import PRESETS
        from engine.sampling import snapshot
        from engine.train import train

        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            for name in ("ddpm-class", "flow-class", "flow-time"):
                cfg = replace(PRESETS[name], num_hiddens=8, train_count=256, epochs=1)
                if name != "ddpm-class":
                    cfg = replace(cfg, snapshot_epochs=())
                train(cfg, root / name, device="cpu", snapshot_fn=snapshot)
        finally:
            torch.set_num_threads(threads)
        results = pending.result()
    for name, res in results.items():
        assert_ok(res)
        assert f"finished {name}" in res.stdout
    for name in ("ddpm-class", "denoiser", "flow-class", "flow-time"):
        assert (root / name / "model.safetensors").is_file() and (root / name / "manifest.json").is_file()
    return root


@pytest.fixture
def cli_main(capsys):
    """engine.cli.main in this process (for cheap argument checks): (exit code, stdout, stderr)."""
    from engine.cli import main

    threads = torch.get_num_threads()

    def call(*args):
        code = main([str(a) for a in args])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    yield call
    torch.set_num_threads(threads)  # sample/denoise set the thread count


def test_train_writes_the_run_folder(models_dir):
    import json

    run = models_dir / "denoiser"
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["world_size"] == 1 and manifest["steps"] == 256 // 256
    assert manifest["config"]["lr"] == 1e-3 and manifest["config"]["num_hiddens"] == 8
    assert manifest["command"].startswith("python -m engine train denoiser --num-hiddens 8")
    assert (run / "snapshots" / "epoch_01.safetensors").is_file()  # snapshot epochs (1, 5)
    assert len((run / "log.jsonl").read_text().splitlines()) == manifest["steps"]


@pytest.fixture(scope="module")
def sampled(models_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("samples")
    common = ["--models-dir", models_dir, "--labels", "0,1,2", "--per-label", "2", "--steps", "5"]
    cmds = {
        "seed0": engine_cmd(
            "sample", "--model", "flow-class", *common, "--seed", "0", "--out", out / "a.npz"
        ),
        "ddpm": engine_cmd(
            "sample",
            "--model",
            "ddpm-class",
            "--models-dir",
            models_dir,
            "--labels",
            "3,4",
            "--per-label",
            "2",
            "--stride",
            "100",
            "--seed",
            "0",
            "--trajectory",
            "--out",
            out / "d.npz",
        ),
        "denoise": engine_cmd(
            "denoise",
            "--model",
            "denoiser",
            "--models-dir",
            models_dir,
            "--count",
            "50",
            "--out",
            out / "f.npz",
        ),
    }
    results = run_many(cmds)
    files = {"seed0": "a", "ddpm": "d", "denoise": "f"}
    arrays = {}
    for key, res in results.items():
        assert_ok(res)
        with np.load(out / f"{files[key]}.npz") as z:
            arrays[key] = dict(z)
    return results, arrays


@pytest.fixture
def flow_args(models_dir):
    return [
        "sample",
        "--model",
        "flow-class",
        "--models-dir",
        models_dir,
        "--labels",
        "0,1,2",
        "--per-label",
        "2",
        "--steps",
        "5",
    ]


def check_images(arr, n):
    images, labels = arr["images"], arr["labels"]
    assert images.dtype == np.float32 and images.shape == (n, 28, 28)
    assert np.isfinite(images).all() and images.min() >= 0 and images.max() <= 1
    assert labels.dtype == np.int64 and labels.shape == (n,)


def test_sample_flow_class(sampled):
    results, arrays = sampled
    a = arrays["seed0"]
    check_images(a, 6)
    assert a["labels"].tolist() == [0, 0, 1, 1, 2, 2]
    assert "trajectory" not in a
    assert "wrote 6 images" in results["seed0"].stdout


def test_sample_same_seed_same_images(sampled, flow_args, cli_main, tmp_path):
    _, arrays = sampled
    assert cli_main(*flow_args, "--seed", "0", "--out", tmp_path / "again.npz")[0] == 0
    assert cli_main(*flow_args, "--seed", "1", "--out", tmp_path / "other.npz")[0] == 0
    with np.load(tmp_path / "again.npz") as again, np.load(tmp_path / "other.npz") as other:
        assert np.array_equal(again["images"], arrays["seed0"]["images"])
        assert not np.array_equal(other["images"], arrays["seed0"]["images"])


def test_sample_trajectory(sampled, flow_args, cli_main, tmp_path):
    _, arrays = sampled
    assert cli_main(*flow_args, "--seed", "0", "--trajectory", "--out", tmp_path / "b.npz")[0] == 0
    with np.load(tmp_path / "b.npz") as z:
        b = dict(z)
    check_images(b, 6)
    traj = b["trajectory"]
    assert traj.dtype == np.float32 and traj.shape == (6, 6, 28, 28)  # (N, steps + 1, 28, 28)
    assert np.array_equal(b["images"], arrays["seed0"]["images"])  # recording changes nothing
    assert np.array_equal(traj[:, -1], b["images"])
    assert np.isfinite(traj).all() and traj.min() >= 0 and traj.max() <= 1
    # the first frame is the seed's noise, clamped for display
    gen = torch.Generator().manual_seed(0)
    noise = torch.randn(6, 1, 28, 28, generator=gen)[:, 0].clamp(0, 1).numpy()
    np.testing.assert_array_equal(traj[:, 0], noise)


def test_sample_ddpm_with_stride(sampled):
    _, arrays = sampled
    d = arrays["ddpm"]
    check_images(d, 4)
    assert d["labels"].tolist() == [3, 3, 4, 4]
    # 990, 890, ..., 90, 0: 11 states
    assert d["trajectory"].shape == (4, 11, 28, 28)
    assert np.array_equal(d["trajectory"][:, -1], d["images"])


@pytest.mark.parametrize(
    "model,sampler,steps,nfe",
    [
        ("ddpm-class", "ddpm", 4, 4),
        ("ddpm-class", "ddim", 4, 4),
        ("ddpm-class", "dpmpp-2m", 3, 3),
        ("flow-class", "euler", 3, 3),
        ("flow-class", "midpoint", 3, 6),
        ("flow-class", "heun", 3, 6),
        ("flow-class", "rk4", 2, 8),
        ("flow-time", "rk4", 2, 8),
    ],
)
def test_sample_with_every_sampler(models_dir, cli_main, tmp_path, model, sampler, steps, nfe):
    """The output contract for every sampler: images, labels, the trajectory (steps + 1 states),
    and the NFE it cost."""
    out = tmp_path / "s.npz"
    code, stdout, err = cli_main(
        "sample",
        "--model",
        model,
        "--models-dir",
        models_dir,
        "--labels",
        "2,7",
        "--per-label",
        "1",
        "--sampler",
        sampler,
        "--steps",
        steps,
        "--trajectory",
        "--out",
        out,
    )
    assert code == 0 and err == "" and f"{nfe} network evaluations" in stdout
    with np.load(out) as z:
        a = dict(z)
    check_images(a, 2)
    assert a["trajectory"].shape == (2, steps + 1, 28, 28) and int(a["nfe"]) == nfe
    assert str(a["sampler"]) == sampler and np.array_equal(a["trajectory"][:, -1], a["images"])
    if model != "flow-time":
        assert a["labels"].tolist() == [2, 7]


def test_ddim_eta_changes_the_result_and_is_checked(models_dir, cli_main, tmp_path):
    common = [
        "sample",
        "--model",
        "ddpm-class",
        "--models-dir",
        models_dir,
        "--labels",
        "5",
        "--per-label",
        "2",
        "--sampler",
        "ddim",
        "--steps",
        "4",
    ]
    for eta, name in ((0.0, "a"), (1.0, "b")):
        assert cli_main(*common, "--eta", eta, "--out", tmp_path / f"{name}.npz")[0] == 0
    with np.load(tmp_path / "a.npz") as a, np.load(tmp_path / "b.npz") as b:
        assert not np.array_equal(a["images"], b["images"])


@pytest.mark.parametrize(
    "extra,needle",
    [
        (["--model", "ddpm-class", "--sampler", "rk4"], "does not fit ddpm-class"),
        (["--model", "flow-class", "--sampler", "ddim"], "does not fit flow-class"),
        (["--model", "flow-class", "--sampler", "euler", "--eta", "0.5"], "--eta is DDIM's"),
        (["--model", "ddpm-class", "--sampler", "ddim", "--eta", "2"], "--eta must be in [0, 1]"),
        (["--model", "ddpm-class", "--sampler", "ddim", "--steps", "500"], "at most 100"),
        (["--model", "ddpm-class", "--sampler", "ddim", "--stride", "30"], "--stride is the course's"),
        (["--model", "flow-class", "--sampler", "heun", "--steps", "0"], "must be > 0"),
    ],
)
def test_bad_sampler_combinations_exit_2_with_one_line(models_dir, cli_main, tmp_path, extra, needle):
    out = tmp_path / "x.npz"
    code, _, err = cli_main("sample", "--models-dir", models_dir, *extra, "--out", out)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and needle in lines[0], err
    assert not out.exists()


def test_sample_unconditional_count(models_dir, cli_main, tmp_path):
    code, out, err = cli_main(
        "sample",
        "--model",
        "flow-time",
        "--models-dir",
        models_dir,
        "--count",
        "3",
        "--steps",
        "4",
        "--out",
        tmp_path / "e.npz",
    )
    assert code == 0 and err == "" and "wrote 3 images" in out
    with np.load(tmp_path / "e.npz") as e:
        check_images(e, 3)
        assert e["labels"].tolist() == [-1, -1, -1]


def test_denoise_writes_arrays_and_reports_metrics(sampled):
    results, arrays = sampled
    f = arrays["denoise"]
    assert set(f) == {"clean", "noisy", "denoised"}
    for v in f.values():
        assert v.shape == (50, 28, 28) and np.isfinite(v).all()
    # noisy = clean + 0.5 * randn(seed 0), the documented default
    eps = torch.randn(50, 1, 28, 28, generator=torch.Generator().manual_seed(0))[:, 0].numpy()
    np.testing.assert_allclose(f["noisy"], f["clean"] + 0.5 * eps, rtol=0, atol=1e-6)
    out = results["denoise"].stdout
    mse = float(out.split("MSE ")[1].split()[0])
    assert mse == pytest.approx(float(((f["denoised"] - f["clean"]) ** 2).mean()), abs=1e-5)
    assert "PSNR" in out and "dB" in out


def test_info_lists_every_model(cli_main):
    from engine.adapters import MODEL_NAMES

    code, out, err = cli_main("info")
    assert code == 0 and err == ""
    for name in MODEL_NAMES:
        assert name in out


# ----------------------------------------------------------------------------- bad arguments


class Marker:
    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        import pathlib

        return (pathlib.Path.touch, (pathlib.Path(self.path),))


# Run as real subprocesses; the others go through engine.cli.main in this process. (Train runs
# only as subprocesses: the train command installs SIGTERM/SIGINT handlers.)
END_TO_END = ["unknown model", "pickle as safetensors", "checkpoint exists", "corrupt checkpoint"]
BAD = [
    "unknown model",
    "denoiser is not sampled",
    "label 11",
    "negative steps",
    "zero per label",
    "guidance -1",
    "guidance nan",
    "sigma nan",
    "sigma -1",
    "epochs 0",
    "no such folder",
    "output is a folder",
    "unwritable /proc",
    "missing model",
    "pickle as safetensors",
    "checkpoint exists",
    "corrupt checkpoint",
]


@pytest.fixture(scope="module")
def bad_runs(models_dir, tmp_path_factory):
    import shutil

    tmp = tmp_path_factory.mktemp("bad")
    (tmp / "empty").mkdir()
    pickled = tmp / "pickled" / "flow-class"
    pickled.mkdir(parents=True)
    torch.save({"x": Marker(tmp / "PWNED")}, pickled / "model.safetensors")
    existing = tmp / "existing"
    shutil.copytree(models_dir / "denoiser", existing)
    corrupt = tmp / "corrupt"
    shutil.copytree(models_dir / "denoiser", corrupt)
    ckpt = corrupt / "checkpoint.safetensors"
    ckpt.write_bytes(ckpt.read_bytes()[:100])

    sample = ["sample", "--models-dir", models_dir, "--labels", "1", "--per-label", "1", "--steps", "2"]
    x = tmp / "x.npz"
    cases = {
        "unknown model": (["sample", "--model", "nosuch", "--out", x], 2, "invalid choice"),
        "denoiser is not sampled": (["sample", "--model", "denoiser", "--out", x], 2, "invalid choice"),
        "label 11": ([*sample, "--model", "flow-class", "--labels", "11", "--out", x], 2, "digits 0-9"),
        "negative steps": ([*sample, "--model", "flow-class", "--steps", "-5", "--out", x], 2, "must be > 0"),
        "zero per label": (
            [*sample, "--model", "flow-class", "--per-label", "0", "--out", x],
            2,
            "must be > 0",
        ),
        "guidance -1": (
            [*sample, "--model", "flow-class", "--guidance", "-1", "--out", x],
            2,
            "must be >= 0",
        ),
        "guidance nan": ([*sample, "--model", "flow-class", "--guidance", "nan", "--out", x], 2, "finite"),
        "sigma nan": (["denoise", "--models-dir", models_dir, "--sigma", "nan"], 2, "finite"),
        "sigma -1": (["denoise", "--models-dir", models_dir, "--sigma", "-1"], 2, "must be >= 0"),
        "epochs 0": (["train", "denoiser", "--epochs", "0", "--out", tmp / "t"], 2, "must be > 0"),
        "no such folder": (
            [*sample, "--model", "flow-class", "--out", tmp / "nope" / "x.npz"],
            2,
            "output folder does not exist",
        ),
        "output is a folder": ([*sample, "--model", "flow-class", "--out", tmp], 2, "is a folder"),
        "unwritable /proc": ([*sample, "--model", "flow-class", "--out", "/proc/x.npz"], None, "/proc"),
        "missing model": (
            [*sample, "--model", "flow-class", "--models-dir", tmp / "empty", "--out", x],
            1,
            "python -m engine train flow-class",
        ),
        "pickle as safetensors": (
            [*sample, "--model", "flow-class", "--models-dir", tmp / "pickled", "--out", x],
            1,
            "not a safetensors file",
        ),
        "checkpoint exists": (["train", "denoiser", *TINY, "--lr", "1e-3", "--out", existing], 1, "--resume"),
        "corrupt checkpoint": (
            ["train", "denoiser", *TINY, "--lr", "1e-3", "--resume", "--out", corrupt],
            1,
            "corrupt",
        ),
    }
    results = run_many({k: engine_cmd(*cases[k][0]) for k in END_TO_END}, parallel=3)
    return tmp, cases, results


@pytest.mark.parametrize("case", BAD)
def test_bad_arguments_exit_with_one_line(bad_runs, cli_main, case):
    tmp, cases, results = bad_runs
    args, code, needle = cases[case]
    if case in END_TO_END:
        returncode, stdout, stderr = results[case].returncode, results[case].stdout, results[case].stderr
    else:
        assert args[0] != "train" or case == "epochs 0"
        returncode, stdout, stderr = cli_main(*args)
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert returncode != 0, f"{case}: exited 0\n{stdout}"
    if code is not None:
        assert returncode == code, f"{case}: exit {returncode}, stderr {stderr}"
    assert "Traceback" not in stderr
    assert len(lines) == 1, f"{case}: expected one line on stderr, got:\n{stderr}"
    assert needle in lines[0], f"{case}: {needle!r} not in {lines[0]!r}"
    assert not (tmp / "x.npz").exists()


def test_the_bad_cases_are_all_run(bad_runs):
    assert sorted(bad_runs[1]) == sorted(BAD) and set(END_TO_END) <= set(BAD)


def test_the_disguised_pickle_never_ran(bad_runs):
    tmp, _, results = bad_runs
    assert results["pickle as safetensors"].returncode == 1
    assert not (tmp / "PWNED").exists()


def test_refused_runs_leave_the_folder_alone(bad_runs, models_dir):
    tmp, _, _ = bad_runs
    for name in ("checkpoint.safetensors", "model.safetensors", "log.jsonl"):
        assert (tmp / "existing" / name).read_bytes() == (models_dir / "denoiser" / name).read_bytes()


# ----------------------------------------------------------------------------- signals, torchrun


def test_sigterm_checkpoints_and_exits_cleanly(tmp_path):
    out = tmp_path / "run"
    proc = subprocess.Popen(
        engine_cmd(
            "train",
            "denoiser",
            "--num-hiddens",
            "8",
            "--train-count",
            "512",
            "--batch-size",
            "32",
            "--epochs",
            "50",
            "--threads",
            "1",
            "--no-progress",
            "--out",
            out,
        ),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        log = out / "log.jsonl"
        while not (log.exists() and len(log.read_text().splitlines()) >= 3):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "training never started"
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, stderr
    assert "stopped denoiser (cancelled); continue with --resume" in stdout
    assert "Traceback" not in stderr
    from engine.checkpoints import load_tensors
    from engine.runs import read_log

    step = load_tensors(out / "checkpoint.safetensors")[1]["global_step"]
    assert step >= 3 and [r["step"] for r in read_log(out / "log.jsonl")] == list(range(step))
    assert not (out / "model.safetensors").exists()


def test_torchrun_two_processes(tmp_path):
    import json

    out = tmp_path / "ddp"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            "2",
            "-m",
            "engine",
            "train",
            "denoiser",
            "--num-hiddens",
            "8",
            "--train-count",
            "256",
            "--batch-size",
            "32",
            "--epochs",
            "1",
            "--threads",
            "1",
            "--no-progress",
            "--out",
            str(out),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    assert "Traceback" not in res.stderr
    assert res.stdout.count("finished denoiser") == 1  # rank 0 reports
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["world_size"] == 2
    assert manifest["steps"] == 256 // 32  # each rank takes half of every global batch of 32
    assert (out / "model.safetensors").is_file()
    from engine.checkpoints import load_weights
    from engine.runs import read_log

    model, cfg, _ = load_weights(out / "model.safetensors")
    assert cfg.batch_size == 32
    assert [r["step"] for r in read_log(out / "log.jsonl")] == list(range(8))
    with torch.no_grad():
        assert torch.isfinite(model(torch.rand(1, 1, 28, 28))).all()


@pytest.mark.slow
def test_train_flow_class_cli_with_its_epoch_one_snapshot(tmp_path):
    """The exact documented tiny run: epoch 1 also samples 40 digits x 300 Euler steps."""
    out = tmp_path / "models" / "flow-class"
    res = run_many({"train": engine_cmd("train", "flow-class", *TINY, "--out", out)})["train"]
    assert_ok(res)
    from engine.checkpoints import load_tensors

    arrays, meta = load_tensors(out / "snapshots" / "epoch_01.safetensors")
    assert arrays["samples"].shape == (40, 1, 28, 28) and meta["num_ts"] == 300
    res = run_many(
        {
            "s": engine_cmd(
                "sample",
                "--model",
                "flow-class",
                "--models-dir",
                tmp_path / "models",
                "--labels",
                "0,1,2",
                "--per-label",
                "2",
                "--steps",
                "5",
                "--seed",
                "0",
                "--out",
                tmp_path / "x.npz",
            )
        }
    )["s"]
    assert_ok(res)
    with np.load(tmp_path / "x.npz") as z:
        check_images(z, 6)


def test_any_trained_run_by_its_folder(models_dir, cli_main, tmp_path):
    """--model-dir: a run trained anywhere samples, denoises and is evaluated like a shipped model;
    the same weights by name or by folder give the same images."""
    by_name, by_dir = tmp_path / "name.npz", tmp_path / "dir.npz"
    common = ["--labels", "0,1", "--per-label", "1", "--steps", "3", "--seed", "4"]
    named = ["--model", "flow-class", "--models-dir", models_dir]
    assert cli_main("sample", *named, *common, "--out", by_name)[0] == 0
    assert cli_main("sample", "--model-dir", models_dir / "flow-class", *common, "--out", by_dir)[0] == 0
    assert np.array_equal(np.load(by_name)["images"], np.load(by_dir)["images"])

    code, out, _ = cli_main("denoise", "--model-dir", models_dir / "denoiser", "--count", "8")
    assert code == 0 and "PSNR" in out and str(models_dir / "denoiser") in out

    code, out, _ = cli_main("evaluate", "--model-dir", models_dir / "denoiser", "--models-dir", models_dir)
    assert code == 0 and "psnr_by_sigma" in out


@pytest.mark.parametrize("args, needle", [
    (["sample", "--labels", "0"], "--model NAME or --model-dir DIR"),
    (["sample", "--model", "flow-class", "--model-dir", "x"], "--model NAME or --model-dir DIR"),
    (["evaluate"], "MODEL or --model-dir DIR"),
    (["sample", "--model-dir", "{empty}"], "no finished model in"),
    (["denoise", "--model-dir", "{flow}"], "not a denoiser"),
    (["sample", "--model-dir", "{denoiser}"], "makes no digits"),
])
def test_a_wrong_model_folder_is_one_line(models_dir, cli_main, tmp_path, args, needle):
    folders = {"{empty}": tmp_path, "{flow}": models_dir / "flow-class",
               "{denoiser}": models_dir / "denoiser"}
    args = [folders.get(a, a) for a in args] + ["--out", tmp_path / "x.npz"] * (args[0] == "sample")
    code, _, err = cli_main(*args)
    assert code in (1, 2) and needle in err and "Traceback" not in err


def test_train_with_the_class_recipe(tmp_path):
    """``--recipe class`` trains the recipe (flags still override it); an unknown recipe, or one a
    model does not have, is one line and exit 2."""
    out = tmp_path / "run"
    res = run_many({
        "class": engine_cmd("train", "flow-class", "--recipe", "class", *TINY, "--batch-size", "64",
                            "--out", out),
        "bad": engine_cmd("train", "flow-class", "--recipe", "fast", "--out", tmp_path / "bad"),
        "none": engine_cmd("train", "ddpm-class", "--recipe", "class", "--out", tmp_path / "none"),
    })
    assert_ok(res["class"])
    config = json.loads((out / "manifest.json").read_text())["config"]
    assert (config["ema_decay"], config["lr_schedule"], config["warmup_steps"]) == (0.999, "cosine", 100)
    assert config["num_hiddens"] == 8 and config["batch_size"] == 64  # the flags win over the recipe
    for key, needle in (("bad", "no 'fast' recipe"), ("none", "ddpm-class has no 'class' recipe")):
        assert res[key].returncode == 2 and needle in res[key].stderr and "Traceback" not in res[key].stderr
        assert not (tmp_path / key).exists()
