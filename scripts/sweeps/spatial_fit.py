"""Spatial-model sweeps, step 2: fit a fresh spatial model (priors from the training histograms)
on cached unaries (scripts/sweeps/cache_unaries.py) and print validation PCK@0.2 of the unary
and the marginal after each epoch, then how far the limb priors' modes drifted (lab.models.spatial.prior_drift).

    .venv/bin/python scripts/sweeps/spatial_fit.py /tmp/u.pt '{"epochs": 1, "lr": 3e-2, "decay": 1e-3, "bias": 1.0}'

What the sweep found on the unaries of the previously shipped detector (validation marginal
after 1 epoch; its unary scores 59.6):
pair bias 3.0 + penalty 1e-2 60.2; bias 1.0 + penalty 1e-2 60.2; bias 1.0 + penalty 1e-3 60.5
(every limb prior within 1 px of its histogram); bias 1.0, no penalty 60.8 (one limb prior 3 px
off); bias 0.3, no penalty 60.8 (two off); unary x2 60.2; full graph, bias 3.0 57.4.
usage: spatial_fit.py CACHE.pt JSON_SPEC   spec keys: epochs lr bias self_bias decay graph loss scale n"""

import json
import math
import os
import sys
import time

import torch

from lab.config import SpatialConfig
from lab.data.cache import PoseCache
from lab.data.codec import HeatmapCodec
from lab.eval.pck import pck
from lab.models import io
from lab.models.detector import BELIEF_OF_LOSS
from lab.models.spatial import SpatialModel, displacement_histograms, prior_drift
from lab.train.losses import heatmap_loss

torch.set_num_threads(int(os.environ.get("T", "2")))
data = torch.load(sys.argv[1], weights_only=True)  # tensors only: no pickle code runs
spec = json.loads(sys.argv[2])
model, meta = io.load(os.environ.get("POSE", "pretrained/pose.safetensors"))
codec = HeatmapCodec.from_config(io.data_config(meta))
belief = BELIEF_OF_LOSS[model.detector.cfg.loss]
Utr, XYtr, Ltr = data["train"]
Uva, XYva, Lva = data["val"]
n = int(spec.get("n", 0)) or len(Utr)
Utr, XYtr, Ltr = Utr[:n], XYtr[:n], Ltr[:n]
if spec.get("scale"):
    Utr = Utr * spec["scale"]
    Uva = Uva * spec["scale"]
sp = SpatialModel(
    SpatialConfig(
        graph=spec.get("graph", "tree"),
        belief=belief,
        heatmap_size=32,
        bias_init=spec.get("bias", 3.0),
        self_bias=spec.get("self_bias", 0.01),
    )
)
tr = PoseCache("cache/lsp128.safetensors")["train"]
xy = codec.to_heatmap(torch.from_numpy(tr.coords)).numpy()
sp.load_histograms(displacement_histograms(xy, tr.labelled, sp.edges, 32, 1.0))
if spec.get("init") == "shipped":
    sp.load_state_dict(model.spatial.state_dict())


def evaluate(U, XY, L):
    with torch.no_grad():
        out = {}
        lm = torch.cat([sp.log_marginal(U[i : i + 256].float()) for i in range(0, len(U), 256)])
        for name, maps, log in (("unary", U.float(), model.unary_is_log), ("marginal", lm, True)):
            p, _ = codec.decode_crop(maps, log_space=log)
            r = pck(p.numpy(), XY.numpy(), L.numpy())
            out[name] = r["mean"]
        return out


print("start", evaluate(Uva, XYva, Lva), flush=True)
opt = torch.optim.Adam(sp.parameters(), lr=spec.get("lr", 1e-2))
E, bs = spec.get("epochs", 2), 32
steps = E * (n // bs)
s = 0
g = torch.Generator().manual_seed(0)
for ep in range(E):
    order = torch.randperm(n, generator=g)
    t0 = time.time()
    for i in range(n // bs):
        idx = order[i * bs : (i + 1) * bs]
        lr = spec.get("lr", 1e-2) * 0.5 * (1 + math.cos(math.pi * s / steps))
        s += 1
        for gr in opt.param_groups:
            gr["lr"] = lr
        lm = sp.log_marginal(Utr[idx].float())
        pred = lm if spec.get("loss", "softmax") == "softmax" else lm.exp()
        loss = heatmap_loss(pred, XYtr[idx], Ltr[idx], codec, spec.get("loss", "softmax"))
        if spec.get("decay", 1e-2):
            loss = loss + spec.get("decay", 1e-2) * sp.prior_penalty()
        opt.zero_grad()
        loss.backward()
        opt.step()
    print(f"epoch {ep + 1} {time.time() - t0:.0f}s loss {loss.item():.3f} val", evaluate(Uva, XYva, Lva), flush=True)
rows = prior_drift(sp)
bad = [r for r in rows if not r["same_side"] or r["shift"] > 2]
print(
    "drift: bad",
    len(bad),
    "of",
    len(rows),
    "max shift",
    max(r["shift"] for r in rows),
    "bias",
    sp.bias().detach().numpy().round(2)[:6],
    "prior peak",
    sp.prior().amax((1, 2)).detach().numpy().round(2)[:6],
    flush=True,
)
if spec.get("save"):
    torch.save(sp.state_dict(), spec["save"])
