"""Where a CPU training step's time goes: train a few steps of a recipe on a mixture, time the steps after a
warm-up, and print the aten ops by their own time (`torch.profiler`), so that a change to the training path is
measured on what it was meant to remove.

    python tools/profile_train.py --mixture RUN_DIR/data [--set SECTION.KEY=VALUE ...] [--peft-cast]
        [--no-loss-autocast] [--steps 12] [--warmup 3] [--top 12] [--no-profile] [--out FILE]

`--no-loss-autocast` computes the loss outside the Trainer's autocast, as `make_trainer` did before it entered
it (the LoRA layers then multiply and add in fp32). `--peft-cast` keeps PEFT's cast of each LoRA layer's input
to the adapter's dtype, which `train.train_adapter` turns off on the bf16 path. `--out` appends the timing row
(tokens/s over the timed steps, non-padding tokens, the mean loss) to a measurement file with the command,
commit and machine (notebook 04 reads kddcup24/measured/train-probe.json). The profiler slows the steps it
records: the timing rows come from runs with `--no-profile`.
"""

import argparse
import contextlib
import json
import shlex
import sys
import tempfile
import time
from pathlib import Path

import torch
from transformers import TrainerCallback

from kddcup24 import train as T
from kddcup24.core import as_recipe, atomic_write, batching
from kddcup24.plan import HARDWARE, detect_hardware
from kddcup24.run import git_commit, load_mixture


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--mixture", required=True, help="a mixture folder (a run's data/)")
    p.add_argument("--track", type=int, default=5)
    p.add_argument("--set", action="append", default=[], help="recipe override SECTION.KEY=VALUE")
    p.add_argument("--peft-cast", action="store_true", help="keep PEFT's input cast on the bf16 path")
    p.add_argument(
        "--no-loss-autocast",
        action="store_true",
        help="the loss outside the Trainer's autocast (LoRA's matmuls in fp32, as before `make_trainer` entered it)",
    )
    p.add_argument("--steps", type=int, default=12)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--top", type=int, default=12)
    p.add_argument("--no-profile", action="store_true", help="time only (the profiler slows the steps)")
    p.add_argument("--out", help="append the timing row to this measurement file")
    a = p.parse_args(argv)
    if a.warmup >= a.steps:
        p.error("--warmup must be below --steps")
    r = as_recipe(None, a.track, a.set)
    recs = load_mixture(T.mixture_folder(r, a.mixture))[0]
    row, losses = {}, []

    class _Time(TrainerCallback):
        def on_step_begin(self, args, state, control, **kw):
            if state.global_step == a.warmup:
                self.t, self.tok = time.time(), state.num_input_tokens_seen
                if not a.no_profile:
                    self.prof = torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU])
                    self.prof.__enter__()

        def on_log(self, args, state, control, logs=None, **kw):
            if state.global_step > a.warmup and "loss" in (logs or {}):
                losses.append(float(logs["loss"]))

        def on_step_end(self, args, state, control, **kw):
            if state.global_step == a.steps:
                dt = time.time() - self.t
                row.update(
                    seconds_per_step=round(dt / (a.steps - a.warmup), 2),
                    tokens_per_second=round((state.num_input_tokens_seen - self.tok) / dt, 1),
                )
                if not a.no_profile:
                    self.prof.__exit__(None, None, None)
                    print(self.prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=a.top))

    if a.peft_cast:  # put PEFT's cast back: the helper `train_adapter` uses, made a no-op for this run
        import peft.helpers

        off = peft.helpers.disable_input_dtype_casting
        peft.helpers.disable_input_dtype_casting = lambda model, active=True: off(model, active=False)
    if a.no_loss_autocast:  # `make_trainer`'s loss enters `self.accelerator.autocast()`: made a no-op for this run
        import accelerate

        accelerate.Accelerator.autocast = lambda self, *args, **kw: contextlib.nullcontext()
    with tempfile.TemporaryDirectory() as d:
        T.train_adapter(r, recs, d, max_steps=a.steps, save_strategy="no", callbacks=[_Time()])
    row.update(
        sets=a.set,
        peft_cast=a.peft_cast,
        loss_autocast=not a.no_loss_autocast,
        timed_steps=a.steps - a.warmup,
        mean_loss=round(sum(losses) / max(len(losses), 1), 4),
        batching=batching(r.train),
    )
    print(json.dumps(row))
    if a.out:
        path = Path(a.out)
        body = json.loads(path.read_text()) if path.exists() else {"rows": []}
        body.update(
            command="python tools/profile_train.py --no-profile --mixture MIX, each row with its own arguments (argv)",
            machine=HARDWARE[detect_hardware()].note,
            git_commit=git_commit(),
        )
        body["rows"].append({"argv": " ".join(shlex.quote(x) for x in (argv or sys.argv[1:])), **row})
        atomic_write(path, json.dumps(body, indent=1))


if __name__ == "__main__":
    main()
