# ruff: noqa: E702, I001
"""Quick 2D exploration: energy matching in [x, learned phi(x)] with different metric objectives."""
import argparse
import json
import sys
import time

import torch
from torch import nn

sys.path.insert(0, "/work/main/benchmarks/twod")
from research import evaluate, make_mixture

from mvm_core.nets.encodings import FourierFeatures

ap = argparse.ArgumentParser()
ap.add_argument("--mix", default="grid")
ap.add_argument("--seed", type=int, default=0)
ap.add_argument("--steps", type=int, default=3000)
ap.add_argument("--batch", type=int, default=256)
ap.add_argument("--glr", type=float, default=1e-3)
ap.add_argument("--mlr", type=float, default=1e-3)
ap.add_argument("--gw", type=int, default=128)
ap.add_argument("--raw", type=float, default=1.0, help="weight of raw x in the matching embedding")
ap.add_argument("--phi", type=float, default=1.0, help="weight of learned part")
ap.add_argument("--mloss", default="logistic")  # logistic | contrastive | none | ed
ap.add_argument("--emb", type=int, default=8)
ap.add_argument("--bound", default="tanh")  # tanh | none | sigmoid
ap.add_argument("--rff", type=int, default=128)
ap.add_argument("--rffs", default="0.5,2")
ap.add_argument("--sched", default="linear")
ap.add_argument("--chamfer", type=float, default=0.0)
ap.add_argument("--norm", type=int, default=1, help="standardize data for nets")
ap.add_argument("--plot", default="")
ap.add_argument("--K", type=int, default=25)
ap.add_argument("--ot", type=float, default=0.0)
ap.add_argument("--edw", type=float, default=1.0)
ap.add_argument("--ramp", type=int, default=0)
ap.add_argument("--margin", type=float, default=1.0)
ap.add_argument("--ff", type=int, default=0)
ap.add_argument("--gsched", default="")
a = ap.parse_args()
torch.set_num_threads(1)
torch.manual_seed(a.seed)
mix = make_mixture(a.mix)
data = mix.sample(100_000, generator=torch.Generator().manual_seed(a.seed)) if "generator" in mix.sample.__code__.co_varnames else mix.sample(100_000)
scale = data.std() if a.norm else torch.tensor(1.0)

def mlp(sizes, act=nn.ReLU):
    L = []
    for i in range(len(sizes) - 1):
        L.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            L.append(act())
    return nn.Sequential(*L)

G = mlp([2, a.gw, a.gw, a.gw, 2])
class M(nn.Module):
    def __init__(s):
        super().__init__()
        sc = [float(v) for v in a.rffs.split(",")]
        s.enc = FourierFeatures(2, a.rff // len(sc), sc, include_input=True) if a.rff else None
        ind = s.enc.out_features if a.rff else 2
        s.body = mlp([ind, 128, 128, a.emb], lambda: nn.LeakyReLU(0.2))
    def forward(s, x):
        h = x / scale
        if s.enc is not None:
            h = s.enc(h)
        e = s.body(h)
        if a.bound == "tanh":
            e = torch.tanh(e)
        elif a.bound == "sigmoid":
            e = torch.sigmoid(e)
        return e
Mn = M()
if a.mloss.startswith("cluster"):
    from sklearn.cluster import KMeans
    km = KMeans(a.K, n_init=3, random_state=a.seed).fit((data[:20000] / scale).numpy())
    centers = torch.tensor(km.cluster_centers_, dtype=torch.float32) * scale
    def clabel(x):
        return torch.cdist(x, centers).argmin(1)

head = nn.Linear(a.emb, 1)
gopt = torch.optim.Adam(G.parameters(), lr=a.glr, betas=(0.5, 0.999))
mopt = torch.optim.Adam(list(Mn.parameters()) + list(head.parameters()), lr=a.mlr, betas=(0.5, 0.999))

def ed(x, y):
    dxy = torch.cdist(x, y).mean()
    dxx = torch.cdist(x, x)
    dyy = torch.cdist(y, y)
    return 2 * dxy - dxx.mean() - dyy.mean()

def emb_for_matching(x):
    parts = []
    if a.raw > 0:
        parts.append(a.raw * x / scale)
    if a.phi > 0 and a.mloss != "none":
        parts.append(a.phi * Mn(x))
    return torch.cat(parts, 1)

g = torch.Generator().manual_seed(a.seed + 1)
t0 = time.time()
snaps = []
for step in range(a.steps):
    f = 1.0 if a.sched == "constant" else 1 - step / a.steps
    for o, lr in ((gopt, a.glr), (mopt, a.mlr)):
        for gr in o.param_groups:
            gr["lr"] = lr * f
    idx = torch.randint(len(data), (a.batch,), generator=g)
    real = data[idx]
    z = torch.randn(a.batch, 2, generator=g)
    fake = G(z)
    er, ef = emb_for_matching(real), emb_for_matching(fake)
    lg = a.edw * ed(er.detach(), ef)
    if a.ot:
        from scipy.optimize import linear_sum_assignment
        C = torch.cdist(ef, er.detach())
        ri, ci = linear_sum_assignment(C.detach().numpy())
        w = a.ot * (min(1.0, step / (a.ramp * a.steps / 100)) if a.ramp else 1.0)
        lg = lg + w * C[ri, ci].mean()
    if a.chamfer:
        lg = lg + a.chamfer * torch.cdist(ef, er.detach()).min(1).values.mean()
    gopt.zero_grad(); lg.backward(inputs=list(G.parameters())); gopt.step()
    if a.mloss != "none":
        r, fk = Mn(real), Mn(fake.detach())
        if a.mloss == "logistic":
            lr_ = nn.functional.softplus(-head(r)).mean() + nn.functional.softplus(head(fk)).mean()
        elif a.mloss == "ed":
            lr_ = -ed(r, fk)
        elif a.mloss == "contrastive":
            emb = torch.cat([r, fk]); lab = torch.cat([torch.zeros(len(r)), torch.ones(len(fk))])
            d = torch.cdist(emb, emb); same = lab[:, None] == lab[None]
            eye = torch.eye(len(emb), dtype=torch.bool)
            lr_ = (d[same & ~eye]).mean() + torch.relu(1.0 - d[~same]).mean()
        elif a.mloss == "cluster":
            emb = torch.cat([r, fk]); lab = torch.cat([clabel(real), torch.full((len(fk),), -1)])
            d = torch.cdist(emb, emb); same = lab[:, None] == lab[None]
            eye = torch.eye(len(emb), dtype=torch.bool)
            isf = lab < 0
            valid = ~eye & ~(isf[:, None] & isf[None]) if not a.ff else ~eye
            lr_ = (d[same & valid]).pow(2).mean() + torch.relu(a.margin - d[~same & valid]).pow(2).mean()
        mopt.zero_grad(); lr_.backward(); mopt.step()
    if a.plot and step in (a.steps // 10, a.steps // 4, a.steps // 2):
        with torch.no_grad():
            snaps.append((step, G(torch.randn(2500, 2, generator=torch.Generator().manual_seed(7)))))
with torch.no_grad():
    s = G(torch.randn(2500, 2, generator=torch.Generator().manual_seed(123)))
res = evaluate(s, mix)
res.update(vars(a)); res["time"] = time.time() - t0
print(json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in res.items()}))
if a.plot:
    import matplotlib; matplotlib.use("Agg"); import matplotlib.pyplot as plt
    snaps.append((a.steps, s))
    fig, ax = plt.subplots(1, len(snaps), figsize=(4 * len(snaps), 4))
    for axi, (st, x) in zip(ax, snaps):
        axi.scatter(x[:, 0], x[:, 1], s=1); axi.scatter(mix.means[:, 0], mix.means[:, 1], s=8, c="r"); axi.set_title(str(st))
    fig.savefig(a.plot)
