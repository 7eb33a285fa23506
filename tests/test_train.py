"Acceptance checks of the training stage (kddcup24.train): kill + resume, launch configs, GPU recipes. Tiny model only."
import json, os, signal, subprocess, sys, time
from pathlib import Path
import pytest
from conftest import ROOT, shared, small_mixture

def _env(tmp_path):
    return {**os.environ, "OMP_NUM_THREADS": "1", "KDDCUP24_DATA": str(shared("data")), "KDDCUP24_RUNS": str(tmp_path/"runs")}

def _train(tiny, run_dir, mix, *extra, steps=24):
    return [sys.executable, "-m", "kddcup24.train", "--track", "5", "--no-eval", "--steps", str(steps), "--run-dir", str(run_dir),
            "--mixture", str(mix), "--set", f"model.base={tiny}", "--set", "train.max_length=2048", "--set", "train.batch_size=2",
            "--set", "train.max_minutes=0", "--set", "train.padding_free=false",
            "--set", "train.save_steps=4", "--set", "lora.r=4", *extra]

def _lora(folder):
    from safetensors.torch import load_file
    return load_file(str(Path(folder)/"adapter_model.safetensors"))

def test_kill_and_resume(tmp_path):
    "SIGKILL during training, rerun with --resume: it continues from the last checkpoint and ends with the uninterrupted run's adapter."
    from kddcup24.models import tiny_qwen2
    tiny, env = tiny_qwen2(tmp_path/"tiny"), _env(tmp_path)
    mix = small_mixture(tmp_path, 120)
    ref, run = tmp_path/"ref", tmp_path/"run"
    subprocess.run(_train(tiny, ref, mix), env=env, cwd=ROOT, check=True, capture_output=True)
    p = subprocess.Popen(_train(tiny, run, mix), env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t0 = time.time()
    while not list((run/"checkpoints").glob("checkpoint-8")) and time.time() - t0 < 120 and p.poll() is None: time.sleep(0.05)
    p.send_signal(signal.SIGKILL); p.wait()
    assert not (run/"sft").exists(), "the run finished before it could be killed"
    from kddcup24.train import last_checkpoint
    from kddcup24.run import read_metrics
    last = last_checkpoint(run/"checkpoints")  # the newest complete one (checkpoint-8 may be half-written)
    assert last is not None and int(last.name.split("-")[1]) >= 4, last
    r = subprocess.run(_train(tiny, run, mix, "--resume"), env=env, cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    line = next(l for l in r.stderr.splitlines() if l.startswith("resuming from"))
    assert line == f"resuming from {last}", line
    info = json.loads((run/"run.json").read_text())
    assert (info["start_step"], info["steps"]) == (int(last.name.split("-")[1]), 24), info
    a, b = _lora(ref/"sft"), _lora(run/"sft")
    assert a.keys() == b.keys() and a
    import torch
    assert all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)
    assert (run/"loss.png").exists() and read_metrics(run)["model_dirs"]["sft"] == str(run/"sft")

def test_launch_configs_parse():
    "The shipped accelerate configs parse with accelerate's own loader; the launch command is one accelerate accepts."
    from accelerate.commands.launch import launch_command_parser
    from kddcup24.train import LAUNCH_CONFIGS, accelerate_config, launch_command
    for name in LAUNCH_CONFIGS:
        accelerate_config(name)
        cmd = launch_command(5, name, 8, "track5-gpu")
        ns = launch_command_parser().parse_args(cmd[2:])
        assert ns.config_file.endswith(LAUNCH_CONFIGS[name]) and ns.num_processes == 8 and ns.module
        assert ns.training_script_args == ["--track", "5", "--recipe", "track5-gpu"]

def test_gpu_recipes_validate():
    "The paper's 72B QLoRA recipe and the single-GPU 7B variant load, validate and build PEFT/TRL configs without a GPU."
    from kddcup24.core import load_recipe
    from kddcup24.train import peft_config, sft_config
    for name in ("track5-gpu", "track5-gpu-7b"):
        r = load_recipe(name)
        assert (r.lora.r, r.lora.alpha, r.train.lr, r.lora.load_in_4bit) == (64, 32, 2e-4, True)
        c = peft_config(r); assert (c.r, c.lora_alpha) == (64, 32)
        s = sft_config(r, "/tmp/unused"); assert s.gradient_checkpointing and s.learning_rate == 2e-4

def test_ddp_two_cpu_processes(tmp_path):
    """Issues 14, 33: `kddcup24 run` with `train.launch=ddp`, `train.processes=2` on this CPU (gloo): the pipeline's train stage
    launches the ranks itself, as a GPU recipe's does; the mixture built once by the data stage, two ranks train, one adapter,
    zero-shot and SFT scored once each by the launching process, no hang."""
    from kddcup24.models import tiny_qwen2
    tiny, env = tiny_qwen2(tmp_path/"tiny"), _env(tmp_path)
    sets = [f"model.base={tiny}", "data.size=64", "data.valid_per_task=1", "inference.eval_limit=4", "train.max_steps=4",
            "train.batch_size=2", "train.grad_accum=1", "train.save_steps=2", "lora.r=4", "train.max_length=2048", "train.max_minutes=0",
            "quant.group_size=16", "train.launch=ddp", "train.processes=2"]
    cmd = [str(Path(sys.executable).parent/"kddcup24"), "run", "--track", "5", "--stages", "data", "train", "--name", "ddp",
           "--data-dir", str(shared("data")), *sum([["--set", x] for x in sets], [])]
    r = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-5000:]
    run = tmp_path/"runs"/"ddp"
    assert "accelerate launch --config_file" in r.stderr and "--num_processes 2" in r.stderr, r.stderr[-3000:]
    m = json.loads((run/"metrics.json").read_text())
    assert set(m["stages"]) == {"zero_shot", "sft"} and (m["stages"]["sft"]["processes"], m["stages"]["sft"]["launch"]) == (2, "ddp")
    assert (run/"sft"/"adapter_model.safetensors").exists() and not (run/"sft"/"training_args.bin").exists()
    assert not list(run.glob(".sft*")), list(run.iterdir())  # no staging folder left behind
    info = json.loads((run/"run.json").read_text())
    # data parallel for real: 4 steps x 2 per rank x 2 ranks = 16 examples drawn (one process draws 8), a global batch of 4
    assert (info["steps"], info["examples_per_step"], info["n_train_fit"]) == (4, 4, 16), info
