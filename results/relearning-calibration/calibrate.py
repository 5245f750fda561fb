import glob, json, sys, time
import torch
from unlearnbench.foundation.config import load_profile
from unlearnbench.foundation.diffusion import ConditionalDiffusion
from unlearnbench.foundation.yardstick import load_yardstick
from unlearnbench.datasets import UnlearningDataModule
from unlearnbench.methods import unlearn
from unlearnbench.metrics.evaluator import Evaluator
torch.set_num_threads(2)
p = load_profile("mnist", ["runtime.progress=false", "runtime.logger=none", "sampler.steps=25",
                           "evaluation.relearn_steps=50", "evaluation.relearn_readings=[5,10,20]",
                           "evaluation.relearn_samples=50"])
data = UnlearningDataModule(p.data, batch_size=p.unlearning.batch_size, seed=p.seed)
orig = ConditionalDiffusion.load(glob.glob(".cache/unlearnbench/original/*")[0])
ev = Evaluator(load_yardstick(p), data, p.sampler, p.evaluation, p.runtime.cache_dir, progress=False)
models = []
for d in glob.glob(".cache/unlearnbench/retrain/*"):
    m = json.load(open(d + "/metadata.json")); c = [k for k in range(10) if k not in m["classes"]][0]
    models.append((f"retrain f{c}", c, ConditionalDiffusion.load(d)))
for method in ("safemax", "salun"):
    models.append((f"{method} f0", 0, unlearn(method, orig, 0, data, p, seed=0).model))
models.append(("original f0", 0, orig))
for lr in (1e-4, 5e-4):
    p.evaluation.relearn_lr = lr
    for name, c, m in models:
        t = time.time()
        out = ev.relearning(m, c, p.runtime, p.evaluation.seed, 0)
        print(f"lr {lr:g} {name}: {out['relearn_curve']} ({time.time()-t:.1f}s)", flush=True)
