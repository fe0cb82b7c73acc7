"""Heun / RK4 / Euler / midpoint at few steps on flow-class: a uniform time grid against grids
crowded near t = 1 or t = 0 (docs/performance.md, "The rest is where the steps are"). 200 samples
(20 per digit), seed 0, CFG gamma 5; prints one row per run and writes
cache/models/flow-class/time_grids.json, which the Fewer steps page shows as its time-grid lesson.

    python scripts/flow_time_grids.py
"""
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import torch

from engine.adapters import FlowModel, load_builtin, model_path
from engine.checkpoints import atomic_write_text
from engine.course import FLOW_GUIDANCE
from engine.device import cpu_amp, machine_description
from engine.fewer_steps import score
from engine.flow import ode_sample, time_grid
from engine.guidance import CFGModel
from engine.sampling import digit_labels

torch.set_num_threads(1)
net, cfg, _ = load_builtin("flow-class")
clf, _, _ = load_builtin("classifier")
flow = FlowModel(net, cfg, cpu_amp())
labels = digit_labels(range(10), 20)
cond = flow.encode(labels)
model = CFGModel(flow, flow.null_cond(1), FLOW_GUIDANCE)
noise = torch.randn(len(labels), 1, 28, 28, generator=torch.Generator().manual_seed(0))


def s_grid(n):
    return torch.linspace(0, 1, n + 1, dtype=torch.float64)


grids = {"uniform": lambda n: time_grid(n),
         "crowded near 1 (1-(1-s)^2)": lambda n: 1 - (1 - s_grid(n)) ** 2,
         "crowded near 0 (s^2)": lambda n: s_grid(n) ** 2}
rows = []
for method, steps in [("heun", 3), ("heun", 5), ("rk4", 2), ("rk4", 3), ("euler", 6), ("midpoint", 3)]:
    for gname, g in grids.items():
        traj = ode_sample(model, noise, g(steps), cond=cond, method=method, record=False)
        s = score(clf, traj.final.clamp(0, 1), labels)
        row = {"solver": method, "steps": steps, "nfe": traj.nfe, "grid": gname, "fd": s["fd"],
               "accuracy": s["accuracy"]}
        rows.append(row)
        print(row, flush=True)
out = model_path("flow-class").parent / "time_grids.json"
report = {"model": "flow-class", "samples": len(labels), "seed": 0, "guidance": FLOW_GUIDANCE,
          "machine": machine_description(torch.device("cpu")), "command": "python scripts/flow_time_grids.py",
          "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "rows": rows}
atomic_write_text(out, json.dumps(report, indent=1) + "\n")
print(f"wrote {out}")
