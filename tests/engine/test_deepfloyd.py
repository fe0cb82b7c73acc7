"""DeepFloyd IF adapter on a tiny random model with IF's layout (no real weights here).

The tiny model is saved in diffusers' layout (model_index.json, unet/, scheduler/, text_encoder/,
tokenizer/) and loaded through the same ``load_deepfloyd(path)`` users call.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import threading
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.deepfloyd import model as df
from engine.deepfloyd import weights as dfw
from engine.denoise import ddpm_step, iterative_denoise, one_step_denoise
from engine.editing import inpaint, rectangle_mask, sdedit
from engine.forward import forward
from engine.guidance import CFGModel
from engine.illusions import AnagramModel, HybridModel
from engine.schedule import Schedule, strided_timesteps
from tests.support.tiny_if import PROMPTS, SIZE, WIDTH, build_tiny_if, from_noise, load_tiny, write_embeds

pytestmark = [
    pytest.mark.filterwarnings("ignore::engine.deepfloyd.model.SlowOnCPUWarning"),
    pytest.mark.usefixtures("one_thread_module"),
]
ROOT = Path(__file__).resolve().parents[2]
# Module fixtures (test_packs.py declares the same three with tests.support.tiny_if).
@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory) -> Path:
    return build_tiny_if(tmp_path_factory.mktemp("tiny-if"))


@pytest.fixture(scope="module")
def embeds_file(tmp_path_factory) -> Path:
    return write_embeds(tmp_path_factory.mktemp("embeds"))


@pytest.fixture(scope="module")
def adapter(tiny_folder, embeds_file, tmp_path_factory):
    return load_tiny(tiny_folder, embeds_file, tmp_path_factory.mktemp("emb"))


# ----------------------------------------------------------------------------- structure


def test_only_the_adapter_imports_diffusers_and_import_stays_light():
    heavy = {"diffusers", "transformers", "huggingface_hub"}
    adapter = {
        "deepfloyd/model.py": heavy,
        "deepfloyd/weights.py": {"huggingface_hub"},  # where each may be
        "diffusers_samplers.py": {"diffusers"},
    }
    for path in (ROOT / "engine").rglob("*.py"):
        where = path.relative_to(ROOT / "engine").as_posix()
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else ([node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            )
            bad = {n.split(".")[0] for n in names} & heavy - adapter.get(where, set())
            assert not bad, f"{where} imports {names}"
    code = (
        "import sys, engine.deepfloyd.model, engine.packs, engine.precompute, engine.cli; "
        "import engine.sampling, engine.diffusers_samplers; "
        "print(sorted({'diffusers', 'transformers', 'huggingface_hub'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_loads_through_the_user_path(adapter, tiny_folder):
    from diffusers import DDPMScheduler

    spec = adapter.spec
    assert (spec.kind, spec.image_size, spec.channels, spec.value_range, spec.conditioning) == (
        "ddpm",
        SIZE,
        3,
        (-1.0, 1.0),
        "text",
    )
    assert "a high quality photo" in spec.prompts and "" not in spec.prompts
    assert adapter.dtype == torch.float32 and adapter.embed_width == WIDTH
    ref = DDPMScheduler.from_pretrained(tiny_folder, subfolder="scheduler").alphas_cumprod
    assert torch.allclose(adapter.schedule.alphas_cumprod, ref.double())
    assert torch.allclose(adapter.schedule.alphas_cumprod, Schedule.cosine().alphas_cumprod, atol=1e-6)
    x = torch.randn(2, 3, SIZE, SIZE)
    out = adapter(x, torch.tensor([500, 10]), adapter.encode(["a high quality photo", "a rocket ship"]))
    assert out.shape == (2, 6, SIZE, SIZE) and out.dtype == torch.float32 and torch.isfinite(out).all()
    assert torch.equal(
        adapter(x, torch.tensor([7, 7]), None), adapter(x, torch.tensor([7, 7]), adapter.null_cond(2))
    )


def test_hub_id_resolves_through_the_cache_with_fp16_patterns(monkeypatch, tiny_folder, tmp_path):
    calls = []

    def fake_download(repo_id, **kw):
        calls.append((repo_id, kw))
        return str(tiny_folder)

    monkeypatch.setattr(dfw, "_snapshot_download", fake_download)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.warns(df.SlowOnCPUWarning):
        a = df.load_deepfloyd("DeepFloyd/IF-I-M-v1.0", device="cpu", embeddings_dir=tmp_path)
    repo, kw = calls[0]
    assert repo == "DeepFloyd/IF-I-M-v1.0" and kw["local_files_only"] is True
    assert "unet/*.fp16*" in kw["allow_patterns"] and "scheduler/*" in kw["allow_patterns"]
    assert a.embeddings.folder == tmp_path / "DeepFloyd--IF-I-M-v1.0"


def test_scheduler_is_fresh_per_request(adapter):
    ts = strided_timesteps(30)
    a, b = adapter.new_scheduler(ts), adapter.new_scheduler()
    assert a is not b and list(a.timesteps) == ts and a.config.variance_type == "learned_range"


# ----------------------------------------------------------------------------- Part A end to end


def test_every_part_a_algorithm_runs_through_the_adapter(adapter):
    sched, ts = adapter.schedule, strided_timesteps(100)
    photo = torch.rand(1, 3, SIZE, SIZE) * 2 - 1
    cond = adapter.encode("a high quality photo")
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    guided = CFGModel(adapter, adapter.null_cond(1), 7.0)
    c1, c2 = adapter.encode(list(PROMPTS[3:5])).split(1)
    results = {
        "forward": forward(photo, 500, sched, generator=g()),
        "one_step": one_step_denoise(adapter, forward(photo, 500, sched, generator=g()), 500, sched, cond),
        "iterative": iterative_denoise(
            adapter,
            forward(photo, ts[5], sched, generator=g()),
            ts[5:],
            schedule=sched,
            cond=cond,
            generator=g(),
        ).final,
        "cfg": from_noise(guided, (1, 3, SIZE, SIZE), sched, ts, cond, g()).final,
        "sdedit": sdedit(guided, photo, 3, ts, sched, cond, g()).final,
        "inpaint": inpaint(guided, photo, rectangle_mask(SIZE, SIZE, 2, 2, 8, 8), ts, sched, cond, g()).final,
        "anagram": iterative_denoise(
            AnagramModel(guided, [c1, c2], ["identity", "flip"]),
            torch.randn(1, 3, SIZE, SIZE, generator=g()),
            ts,
            schedule=sched,
            generator=g(),
        ).final,
        "hybrid": iterative_denoise(
            HybridModel(guided, c1, c2),
            torch.randn(1, 3, SIZE, SIZE, generator=g()),
            ts,
            schedule=sched,
            generator=g(),
        ).final,
    }
    for name, x in results.items():
        assert x.shape == (1, 3, SIZE, SIZE) and torch.isfinite(x).all(), name
    again = sdedit(guided, photo, 3, ts, sched, cond, g()).final
    assert torch.equal(again, results["sdedit"])


def test_variance_step_matches_diffusers_learned_range(adapter):
    g = torch.Generator().manual_seed(1)
    x, eps, v = (torch.randn(2, 3, SIZE, SIZE, generator=g) for _ in range(3))
    v = v.clamp(-1, 1)
    sched = adapter.new_scheduler()
    sched = type(sched).from_config(sched.config, thresholding=False, clip_sample=False)
    sched.set_timesteps(timesteps=strided_timesteps(30))
    for t, t_prev in ((990, 960), (300, 270), (30, 0)):
        ref = sched.step(torch.cat([eps, v], 1), t, x, generator=torch.Generator().manual_seed(t)).prev_sample
        noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(t))
        ours, _ = ddpm_step(x, eps, t, t_prev, adapter.schedule, noise, v)
        assert torch.allclose(ours, ref, atol=1e-5), t


def test_full_loop_matches_a_diffusers_loop(adapter):
    """Same model, same generator: the engine loop == set_timesteps(timesteps=strided) + step()."""
    ts = strided_timesteps(100)
    cond = adapter.encode("a high quality photo")
    x_T = torch.randn(1, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(3))
    ours = iterative_denoise(
        adapter, x_T, ts, schedule=adapter.schedule, cond=cond, generator=torch.Generator().manual_seed(4)
    )
    sched = adapter.new_scheduler()
    sched = type(sched).from_config(sched.config, thresholding=False, clip_sample=False)
    sched.set_timesteps(timesteps=ts)
    g, x = torch.Generator().manual_seed(4), x_T.clone()
    for t in ts[:-1]:
        x = sched.step(adapter(x, torch.tensor([t]), cond), t, x, generator=g).prev_sample
    assert torch.allclose(ours.final, x, atol=1e-4)


def test_concurrent_requests_match_sequential(adapter):
    ts = strided_timesteps(200)
    cond = adapter.encode("a rocket ship")

    def run(seed):
        g = torch.Generator().manual_seed(seed)
        return from_noise(adapter, (1, 3, SIZE, SIZE), adapter.schedule, ts, cond, g).final

    expected = {s: run(s) for s in (1, 2)}
    got = {}
    threads = [threading.Thread(target=lambda s=s: got.__setitem__(s, run(s))) for s in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(torch.equal(got[s], expected[s]) for s in (1, 2))


# ----------------------------------------------------------------------------- embeddings


def test_embedding_store_import_and_validation(adapter, tmp_path):
    store = df.EmbeddingStore(tmp_path, "k", WIDTH)
    sf = tmp_path / "e.safetensors"
    from safetensors.torch import save_file

    save_file({"a cat": torch.randn(1, 77, WIDTH)}, str(sf))
    assert store.import_file(sf) == ["a cat"] and store.prompts() == ["a cat"]
    assert store.get("a cat").shape == (1, 77, WIDTH)
    assert store.path("a cat").name == __import__("hashlib").sha256(b"a cat").hexdigest() + ".safetensors"
    bad = tmp_path / "bad.pth"
    torch.save({"a dog": torch.randn(1, 77, 4096), "a cat": torch.randn(1, 77, WIDTH)}, bad)
    with pytest.raises(df.EmbeddingShapeError, match=r"\[1, 77, 24\]"):
        store.import_file(bad)
    assert "a dog" not in store  # all-or-nothing
    pickled = tmp_path / "pickled.pth"
    torch.save({"x": object()}, pickled)
    with pytest.raises(df.EmbeddingsMissingError, match="plain dict"):
        store.import_file(pickled)
    with pytest.raises(df.EmbeddingsMissingError, match="not found"):
        store.import_file(tmp_path / "nope.pth")
    with pytest.raises(df.EmbeddingsMissingError, match="a giraffe"):
        adapter.encode(["a high quality photo", "a giraffe"])
    with pytest.raises(df.EmbeddingShapeError):
        adapter(torch.zeros(1, 3, SIZE, SIZE), torch.tensor([5]), torch.zeros(1, 77, WIDTH + 1))


def test_t5_encoding_fills_the_cache_once(tiny_folder, tmp_path):
    store = df.EmbeddingStore(tmp_path, "tiny", WIDTH)
    with pytest.warns(df.SlowOnCPUWarning):
        assert df.encode_with_t5(tiny_folder, ["a cat", "", "a cat"], store, device="cpu") == ["a cat", ""]
    assert store.get("a cat").shape == (1, 77, WIDTH) and not torch.equal(store.get("a cat"), store.get(""))
    assert df.encode_with_t5(tiny_folder, ["a cat"], store, device="cpu") == []


# ----------------------------------------------------------------------------- clear errors


def test_missing_or_incomplete_folder(tmp_path):
    with pytest.raises(df.ModelNotFoundError, match="does not exist"):
        df.load_deepfloyd(tmp_path / "nothing", device="cpu")
    (tmp_path / "half" / "scheduler").mkdir(parents=True)
    with pytest.raises(df.ModelNotFoundError, match="no unet/ subfolder"):
        df.load_deepfloyd(tmp_path / "half", device="cpu")


def _gated_error():
    import httpx2
    from huggingface_hub.errors import GatedRepoError

    url = "https://huggingface.co/DeepFloyd/IF-I-XL-v1.0/resolve/main/model_index.json"
    response = httpx2.Response(401, request=httpx2.Request("GET", url), headers={"X-Error-Code": "GatedRepo"})
    return GatedRepoError("Cannot access gated repo DeepFloyd/IF-I-XL-v1.0", response=response)


@pytest.mark.parametrize("has_token, error", [(True, df.GatedModelError), (False, df.TokenMissingError)])
def test_gated_repo_without_licence_or_token(monkeypatch, has_token, error):
    def raise_gated(repo_id, **kw):
        raise _gated_error()

    monkeypatch.setattr(dfw, "_snapshot_download", raise_gated)
    monkeypatch.setattr(dfw, "_has_token", lambda: has_token)
    with pytest.raises(error, match="licence") as info:
        df.load_deepfloyd("DeepFloyd/IF-I-XL-v1.0", device="cpu")
    assert isinstance(info.value, df.DeepFloydError)


def test_gated_error_wrapped_by_diffusers_is_still_recognised(monkeypatch):
    monkeypatch.setattr(dfw, "_has_token", lambda: True)
    with pytest.raises(df.GatedModelError), df.translate_errors("DeepFloyd/IF-I-XL-v1.0"):
        try:
            raise _gated_error()
        except Exception:
            raise OSError("DeepFloyd/IF-I-XL-v1.0 is not a local folder and is not a valid model identifier")  # noqa: B904


def test_repository_not_found_and_offline_cache_miss(monkeypatch):
    from huggingface_hub.errors import RepositoryNotFoundError

    def raise_missing(repo_id, **kw):
        err = _gated_error()
        raise RepositoryNotFoundError("404", response=err.response)

    with monkeypatch.context() as m:
        m.setattr(dfw, "_snapshot_download", raise_missing)
        with pytest.raises(df.ModelNotFoundError, match="no repository"):
            df.load_deepfloyd("DeepFloyd/IF-I-XXL-v9", device="cpu")
    with pytest.raises(df.ModelNotFoundError, match="HF_HUB_OFFLINE"):  # real huggingface_hub, no network
        df.resolve_model("DeepFloyd/not-in-any-cache-v0", offline=True)


def test_no_gpu_and_out_of_memory(adapter):
    if not torch.cuda.is_available():
        with pytest.raises(df.NoGPUError, match="GPU"):
            df.pick_deepfloyd_device("cuda")
        with pytest.raises(df.NoGPUError):
            df.pick_deepfloyd_device("auto", allow_cpu=False)

    class Boom(torch.nn.Module):
        config = adapter.unet.config

        def forward(self, *a, **k):
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    broken = replace(adapter, unet=Boom())
    with pytest.raises(df.OutOfGPUMemoryError, match="smaller model"):
        broken(torch.zeros(1, 3, SIZE, SIZE), torch.tensor([5]), None)
    assert adapter._lock.acquire(blocking=False)  # the lock is released after errors
    adapter._lock.release()


# ----------------------------------------------------------------------------- command line


def _sample_argv(folder, embeds, out, emb_dir, *extra):
    return [
        "sample",
        "--backend",
        "deepfloyd",
        "--model-path",
        str(folder),
        "--prompt-embeds",
        str(embeds),
        "--prompt",
        "a high quality photo",
        "--count",
        "2",
        "--stride",
        "200",
        "--guidance",
        "7",
        "--seed",
        "0",
        "--out",
        str(out),
        "--embeddings-dir",
        str(emb_dir),
        "--device",
        "cpu",
        *extra,
    ]


def test_cli_sample_is_reproducible(tiny_folder, embeds_file, tmp_path, capsys):
    from engine.cli import main

    for name in ("a.npz", "b.npz"):
        assert main(_sample_argv(tiny_folder, embeds_file, tmp_path / name, tmp_path / "emb")) == 0
    a, b = np.load(tmp_path / "a.npz"), np.load(tmp_path / "b.npz")
    assert a["images"].shape == (2, 3, SIZE, SIZE) and a["images"].dtype == np.float32
    assert a["images"].min() >= 0 and a["images"].max() <= 1
    assert list(a["prompts"]) == ["a high quality photo"] * 2 and int(a["seed"]) == 0
    np.testing.assert_array_equal(a["images"], b["images"])
    assert "slow" in capsys.readouterr().err  # the CPU warning reaches the user


def test_cli_errors_are_one_line(tiny_folder, embeds_file, tmp_path, capsys):
    from engine.cli import main

    argv = _sample_argv(tiny_folder, embeds_file, tmp_path / "x.npz", tmp_path / "emb")
    argv[argv.index("a high quality photo")] = "a prompt nobody encoded"
    assert main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: no stored embedding for 'a prompt nobody encoded'")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "engine",
            *_sample_argv(tmp_path / "no-model", embeds_file, tmp_path / "y.npz", tmp_path / "emb"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().count("\n") == 0 and "does not exist" in proc.stderr


def test_cli_plugs_into_engine_cli_parser():
    from engine.cli import build_parser

    parser = build_parser()  # engine/cli/deepfloyd.py adds the backend flags and its commands
    args = parser.parse_args(["precompute", "--model-path", "m", "--pack", "p", "--seed", "1", "--seed", "2"])
    assert args.backend == "deepfloyd" and args.seed == [1, 2] and callable(args.handler)
    args = parser.parse_args(["sample", "--model", "ddpm-class", "--out", "x.npz"])
    assert args.backend == "builtin"


@pytest.mark.slow
def test_real_deepfloyd_weights(tmp_path):
    """Needs the real IF-I weights (licence accepted, HF token or local copy) and a GPU."""
    a = df.load_deepfloyd(df.DEFAULT_MODEL_ID, device="cuda", embeddings_dir=tmp_path)
    df.encode_with_t5(df.DEFAULT_MODEL_ID, ["", df.DEFAULT_PROMPT], a.embeddings)
    traj = df.sample_images(a, [df.DEFAULT_PROMPT], 1, 30, 7.0, torch.Generator().manual_seed(0))
    assert traj.final.shape == (1, 3, 64, 64) and torch.isfinite(traj.final).all()


# ----------------------------------------------------------------------------- CUDA (GPU machines)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (run on a GPU machine)")
def test_cuda_fp16_path_runs_part_a_loops_with_cpu_tensors(tiny_folder, embeds_file, tmp_path):
    """What a user with a GPU gets: the UNet in fp16 on CUDA, the sampling loops' tensors on
    the CPU (the adapter moves them across), results finite and close to the fp32 CPU model."""
    gpu = df.load_deepfloyd(tiny_folder, device="auto", embeddings_dir=tmp_path / "gpu")
    gpu.embeddings.import_file(embeds_file)
    assert gpu.device.type == "cuda" and gpu.dtype == torch.float16
    with pytest.warns(df.SlowOnCPUWarning):
        cpu = df.load_deepfloyd(tiny_folder, device="cpu", embeddings_dir=tmp_path / "cpu")
    cpu.embeddings.import_file(embeds_file)
    x, t = torch.randn(2, 3, SIZE, SIZE), torch.tensor([500, 10])
    cond = gpu.encode(["a high quality photo", "a rocket ship"])
    out = gpu(x, t, cond)
    assert out.device.type == "cpu" and out.dtype == torch.float32 and torch.isfinite(out).all()
    ref = cpu(x, t, cpu.encode(["a high quality photo", "a rocket ship"]))
    assert (out - ref).abs().max() < 0.05 * ref.abs().max() + 1e-3  # fp16 vs fp32
    ts = strided_timesteps(100)
    g = torch.Generator().manual_seed(0)
    guided = CFGModel(gpu, gpu.null_cond(1), 7.0)
    final = from_noise(
        guided, (1, 3, SIZE, SIZE), gpu.schedule, ts, gpu.encode("a high quality photo"), g
    ).final
    assert final.shape == (1, 3, SIZE, SIZE) and torch.isfinite(final).all()
