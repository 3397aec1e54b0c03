"""The ablation behind docs/shapes_dcgan.md: the default run's DCGAN (this project's
Generator / Discriminator, the same data, losses and domain features) in a bare PyTorch
loop, so one process scores several step counts. One JSON line per evaluation, with
[domain FID, precision, recall] of the live generator (and of its EMA with --ema):

    python scripts/shapes_dcgan_ablation.py --name before
    python scripts/shapes_dcgan_ablation.py --name after --up nearest --r1 1 --r1every 4 --lr 5e-4

Measured with 1 torch thread on busy shared cores: compare runs, not seconds."""
from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torchvision.utils import save_image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from t2i.data.synthetic.shapes import ShapesDataModule  # noqa: E402
from t2i.evaluation.features import feature_space  # noqa: E402
from t2i.evaluation.scores import feature_metrics  # noqa: E402
from t2i.evaluation.settings import EvalSettings  # noqa: E402
from t2i.images import grid  # noqa: E402
from t2i.nets.dcgan import Discriminator, Generator  # noqa: E402


def arguments() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--name", required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--evals", default="750,1500", help="steps at which to score")
    p.add_argument("--bs", type=int, default=64)
    p.add_argument("--ngf", type=int, default=32)
    p.add_argument("--ndf", type=int, default=32)
    p.add_argument("--lr", type=float, default=2e-4, help="Adam lr of both nets, betas (0.5, 0.999)")
    p.add_argument("--label-smoothing", type=float, default=0.1)
    p.add_argument("--up", default="deconv", choices=["deconv", "nearest"])
    p.add_argument("--r1", type=float, default=0.0, help="R1 gamma (0: off)")
    p.add_argument("--r1every", type=int, default=1)
    p.add_argument("--ema", type=float, default=0.0)
    p.add_argument("--d-norm", default="batch", choices=["batch", "none"], help="D's feature-stage norm")
    p.add_argument("--loss", default="bce", choices=["bce", "hinge"])
    p.add_argument("--beta1", type=float, default=0.5)
    p.add_argument("--lr-d", type=float, default=None, help="D's lr (default: --lr)")
    p.add_argument("--categorical", type=int, default=0,
                   help="K > 0: the last K of z's 100 entries are a one-hot code drawn uniformly (a discrete latent)")
    p.add_argument("--cache-dir", default=".cache")
    p.add_argument("--out", default="outputs/ablation")
    return p.parse_args()


def d_loss_fn(a, D, real, fake, step):
    penalise = a.r1 > 0 and step % a.r1every == 0
    real = real.detach().requires_grad_(penalise)
    real_logits, fake_logits = D(real), D(fake.detach())
    if a.loss == "hinge":
        loss = F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean()
    else:
        loss = (F.binary_cross_entropy_with_logits(real_logits, torch.full_like(real_logits, 1 - a.label_smoothing))
                + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))
    if penalise:
        (grad,) = torch.autograd.grad(real_logits.sum(), real, create_graph=True)
        loss = loss + 0.5 * a.r1 * a.r1every * grad.pow(2).flatten(1).sum(1).mean()
    return loss


def score(net, z, space, real_features, mode="eval") -> tuple[list[float], torch.Tensor]:
    """[domain FID, precision, recall] through t2i.evaluation's code path (as metrics.json)."""
    net.train(mode == "train")
    with torch.no_grad():
        fake = torch.cat([net(chunk) for chunk in z.split(250)]).clamp(-1, 1)
    net.train()
    m = feature_metrics(space.extract(fake), real_features)
    return [round(m["fid"], 2), round(m["precision"], 3), round(m["recall"], 3)], fake


def main() -> None:
    a = arguments()
    torch.set_num_threads(1)
    torch.manual_seed(a.seed)
    data = ShapesDataModule(image_size=32, seed=a.seed)  # the default run's data (6000 training images)
    data.setup()
    train = torch.stack([data.train_set[i]["image"] for i in range(len(data.train_set))])
    real = torch.stack([data.test_set[i]["image"] for i in range(1000)])
    domain = EvalSettings.from_config({"feature_extractor": "domain", "batch_size": 250})
    space = feature_space(domain, data, a.cache_dir)
    real_features = space.extract(real)

    G, D = Generator(100, a.ngf, 1, 32, upsample=a.up), Discriminator(1, a.ndf, 32)
    if a.d_norm == "none":
        D.features = torch.nn.Sequential(*[torch.nn.Identity() if isinstance(m, torch.nn.BatchNorm2d) else m
                                           for m in D.features])
    G_ema = copy.deepcopy(G).requires_grad_(False)
    opt_g = torch.optim.Adam(G.parameters(), a.lr, betas=(a.beta1, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), a.lr_d or a.lr, betas=(a.beta1, 0.999))
    def noise(n: int) -> torch.Tensor:  # the source report's U(-1, 1), optionally with a one-hot tail
        z = torch.rand(n, 100) * 2 - 1
        if a.categorical:
            z[:, 100 - a.categorical:] = torch.nn.functional.one_hot(torch.randint(a.categorical, (n,)),
                                                                      a.categorical).float()
        return z
    z_eval, evals = noise(1000), {int(s) for s in a.evals.split(",")}
    order, pos, start = torch.randperm(len(train)), 0, time.time()
    Path(a.out).mkdir(parents=True, exist_ok=True)
    for step in range(1, a.steps + 1):
        if pos + a.bs > len(train):
            order, pos = torch.randperm(len(train)), 0
        batch, pos = train[order[pos:pos + a.bs]], pos + a.bs
        fake = G(noise(a.bs))
        loss = d_loss_fn(a, D, batch, fake, step)
        opt_d.zero_grad()
        loss.backward()
        opt_d.step()
        D.requires_grad_(False)
        logits = D(fake)
        opt_g.zero_grad()
        g_loss = (-logits.mean() if a.loss == "hinge"
                  else F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits)))
        g_loss.backward()
        opt_g.step()
        D.requires_grad_(True)
        with torch.no_grad():  # as t2i.tasks.ema.GeneratorEMA
            decay = min(a.ema, (1 + step) / (10 + step))
            for avg, live in zip(G_ema.parameters(), G.parameters()):
                avg.lerp_(live, 1 - decay)
            for avg, live in zip(G_ema.buffers(), G.buffers()):
                avg.copy_(live)
        if step in evals:
            row = {"name": a.name, "seed": a.seed, "step": step, "seconds": round(time.time() - start)}
            for tag, net in [("live", G), ("live_bn_train", G)] + ([("ema", G_ema)] if a.ema else []):
                row[tag], fake = score(net, z_eval, space, real_features,
                                       "train" if tag.endswith("bn_train") else "eval")
                save_image(grid(fake[:64]), Path(a.out) / f"{a.name}_{tag}_{step}.png")
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
