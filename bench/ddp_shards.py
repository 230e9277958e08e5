"""Data-parallel training with one voxpipe pipeline per rank, on whatever GPUs there are (two
ranks may share one GPU): run under torchrun.

    torchrun --standalone --nproc_per_node=2 bench/ddp_shards.py --data /tmp/kits \
        [--backend auto|nccl|gloo] [--epochs 3] [--steps 20] [--out FILE --json FILE]

1. Shards: each rank builds a pipeline over a dataset of --id-cases tiny cases whose image is
   filled with the case's number, so every sample names its case. The reader takes its shard
   from RANK and WORLD_SIZE (voxpipe.torch's convention, DALI's semantics) with shuffle and
   pad_last_batch. For each of --epochs epochs the ranks gather the case ids they saw and
   rank 0 checks that the shards are disjoint, that together they cover every case, and that
   every rank ran the same number of batches; a negative control (reader seeds differing per
   rank) must make the same check fail. The reader's seed is the same on every rank
   (one permutation per epoch for all), the pipelines' seeds differ (augmentations differ).
2. Training: the MLPerf UNet3D (bench/unet3d.py) under DistributedDataParallel, each rank fed
   by its own voxpipe pipeline (MLPerf chain on its GPU, its shard of --data), bf16 autocast,
   a few warm-up steps then up to --steps steps; per-rank step time and samples/s, and a check
   that the ranks' parameters are still identical afterwards.

Backend: auto = nccl when every rank has a GPU of its own, else gloo: NCCL refuses two ranks
on one GPU ("Duplicate GPU detected"), so with ranks sharing a GPU the check runs on gloo
(gradients all-reduced through host memory). --backend nccl forces NCCL: when its first
all-reduce fails, the script says so and exits with status 3 (bench/run_all then retries
with gloo).
"""
import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import time
import traceback

import numpy as np
import torch
import torch.distributed as dist

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "python"))

from train_unet3d import ensure_data  # noqa: E402
from unet3d import DiceCELoss, UNet3D  # noqa: E402

NCCL_REFUSED = 3


def log(rank, msg):
    print(f"[rank {rank}] {msg}", flush=True)


def make_id_dataset(folder, n, size=4):
    """n cases (1, size, size, size): image = case number (float32), label = 0 (uint8)."""
    os.makedirs(folder, exist_ok=True)
    entries = []
    for k in range(n):
        x, y = f"case_{k:05d}_x.npy", f"case_{k:05d}_y.npy"
        np.save(os.path.join(folder, x), np.full((1, size, size, size), k, np.float32))
        np.save(os.path.join(folder, y), np.zeros((1, size, size, size), np.uint8))
        entries.append({"image": "./" + x, "label": "./" + y})
    with open(os.path.join(folder, "dataset.json"), "w") as f:
        json.dump({"name": "ids", "training": entries, "numTraining": n}, f)


def epoch_ids(a, rank, folder, reader_seed=None):
    """Case ids seen by this rank in each epoch, and batches per epoch."""
    import voxpipe
    import voxpipe.torch as vt

    pipe = voxpipe.Pipeline(batch_size=a.batch, num_threads=1, device_id=None,
                            seed=a.seed + 1 + rank)
    with pipe:
        img, _ = voxpipe.fn.readers.dataset(os.path.join(folder, "dataset.json"), shuffle=True,
                                            seed=a.seed if reader_seed is None else reader_seed,
                                            pad_last_batch=True)
        pipe.set_outputs(img)
    loader = vt.Loader(pipe, ["image"])
    out = []
    for _ in range(a.epochs):
        ids, nb = [], 0
        for b in loader:
            x = b["image"]
            ids += [int(round(v)) for v in x.reshape(x.shape[0], -1)[:, 0].tolist()]
            nb += 1
        out.append({"ids": ids, "batches": nb})
    return out, len(loader)


def check_shards(gathered, n_cases, epochs):
    """gathered[r][e] = {"ids", "batches"}: a list of problems (empty when all is well) and a
    per-epoch summary."""
    problems, summary = [], []
    world = len(gathered)
    for e in range(epochs):
        sets = [set(g[e]["ids"]) for g in gathered]
        for r in range(world):
            for q in range(r + 1, world):
                both = sets[r] & sets[q]
                if both:
                    problems.append(f"epoch {e}: ranks {r} and {q} share cases {sorted(both)[:8]}")
        union = set().union(*sets)
        missing = set(range(n_cases)) - union
        extra = union - set(range(n_cases))
        if missing:
            problems.append(f"epoch {e}: cases {sorted(missing)[:8]} seen by no rank")
        if extra:
            problems.append(f"epoch {e}: unknown case ids {sorted(extra)[:8]}")
        nb = [g[e]["batches"] for g in gathered]
        if len(set(nb)) != 1:
            problems.append(f"epoch {e}: batches per rank differ: {nb}")
        summary.append({"epoch": e, "cases_per_rank": [len(s) for s in sets],
                        "samples_per_rank": [len(g[e]["ids"]) for g in gathered],
                        "batches_per_rank": nb, "covered": len(union)})
    moved = epochs > 1 and any(set(gathered[0][e]["ids"]) != set(gathered[0][0]["ids"])
                               for e in range(1, epochs))
    return problems, summary, moved


def train_pipe(a, rank, dev_index):
    """The MLPerf chain (random crop read by the reader, flips, cast, noise) on this rank's
    GPU, this rank's shard of --data."""
    import voxpipe

    gpu = dev_index is not None
    dev = "gpu" if gpu else "cpu"
    pipe = voxpipe.Pipeline(batch_size=a.batch, num_threads=a.vp_threads,
                            device_id=dev_index if gpu else None, seed=a.seed + 1 + rank)
    with pipe:
        img, lbl = voxpipe.fn.readers.dataset(os.path.join(a.data, "dataset.json"), shuffle=True,
                                              seed=a.seed, pad_last_batch=True,
                                              random_crop=[a.patch] * 3)
        f = [voxpipe.fn.coin_flip(probability=1 / 3) for _ in range(3)]
        flips = dict(depthwise=f[0], vertical=f[1], horizontal=f[2], device=dev)
        img, lbl = voxpipe.fn.flip(img, **flips), voxpipe.fn.flip(lbl, **flips)
        img = voxpipe.fn.cast(img, dtype="float32", device=dev)
        lbl = voxpipe.fn.cast(lbl, dtype="uint8", device=dev)
        sd = voxpipe.fn.uniform(range=[0, 0.1])
        img = voxpipe.fn.gaussian_noise(img, stddev=sd, p=0.1, device=dev)
        pipe.set_outputs(img, lbl)
    return pipe


def train(a, rank, world, device, dev_index):
    import voxpipe.torch as vt
    from torch.nn.parallel import DistributedDataParallel as DDP

    cuda = device.type == "cuda"
    loader = vt.Loader(train_pipe(a, rank, dev_index), ["image", "label"])

    def batches():
        while True:
            for b in loader:
                yield b["image"], b["label"]

    it = batches()
    torch.manual_seed(a.seed)
    filters = tuple(int(v) for v in a.filters.split(","))
    model = UNet3D(1, 3, filters=filters).to(device)
    ddp = DDP(model, device_ids=[dev_index] if cuda else None)
    opt = torch.optim.Adam(ddp.parameters(), lr=1e-4)
    lossf = DiceCELoss(3)
    keep = []

    def step():
        x, y = next(it)
        keep.append((x, y))  # the GPU may still read a batch after the host moves on
        del keep[:-4]
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=cuda):
            loss = lossf(ddp(x), y)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    for _ in range(a.warmup):
        step()
    if cuda:
        torch.cuda.synchronize()
    dist.barrier()
    times = []
    t0 = time.perf_counter()
    for _ in range(a.steps):
        s0 = time.perf_counter()
        step()
        if cuda:
            torch.cuda.synchronize()  # per-step wall times; DDP syncs the ranks every step anyway
        times.append(time.perf_counter() - s0)
        if time.perf_counter() - t0 > a.max_seconds:
            break
    wall = time.perf_counter() - t0
    flat = torch.cat([p.detach().float().reshape(-1) for p in model.parameters()]).cpu()
    return dict(rank=rank, steps=len(times), step_ms_median=1e3 * statistics.median(times),
                step_ms_mean=1e3 * wall / len(times), samples_per_s=len(times) * a.batch / wall,
                param_sum=float(flat.double().sum()), param_head=flat[:4096].tolist())


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="/tmp/vp-bench/kits")
    ap.add_argument("--cases", type=int, default=24)
    ap.add_argument("--scale", type=float, default=0.75)
    ap.add_argument("--id-dir", default=None, help="where to write the id dataset")
    ap.add_argument("--id-cases", type=int, default=37)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--backend", choices=["auto", "nccl", "gloo"], default="auto")
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--patch", type=int, default=128)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--max-seconds", type=float, default=30.0)
    ap.add_argument("--vp-threads", type=int, default=2)
    ap.add_argument("--filters", default="32,64,128,256,320")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip-train", action="store_true")
    ap.add_argument("--out")
    ap.add_argument("--json")
    a = ap.parse_args()
    rank = int(os.environ.get("RANK", 0))
    world = int(os.environ.get("WORLD_SIZE", 1))
    local = int(os.environ.get("LOCAL_RANK", rank))
    cuda = torch.cuda.is_available()
    ndev = torch.cuda.device_count() if cuda else 0
    dev_index = local % ndev if cuda else None
    if cuda:
        torch.cuda.set_device(dev_index)
    device = torch.device("cuda", dev_index) if cuda else torch.device("cpu")
    shared = cuda and world > ndev
    backend = a.backend
    why = "as asked"
    if backend == "auto":
        backend = "nccl" if cuda and not shared else "gloo"
        why = ("ranks share a GPU: NCCL refuses two ranks on one GPU" if shared else
               "no GPU" if not cuda else "one GPU per rank")
    if backend != "nccl":
        dist.init_process_group(backend, timeout=datetime.timedelta(seconds=180))
    else:
        try:
            dist.init_process_group(backend, timeout=datetime.timedelta(seconds=180))
            t = torch.ones(1, device=device)
            dist.all_reduce(t)
            torch.cuda.synchronize()
            assert t.item() == world, f"all_reduce gave {t.item()}, expected {world}"
        except Exception as e:
            log(rank, f"NCCL refused this layout ({world} ranks on {ndev} GPU(s)): "
                      f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
            os._exit(NCCL_REFUSED)
    log(rank, f"backend {backend} ({why}); device {device}; world {world}")

    # 1. shards
    id_dir = a.id_dir or os.path.join(os.path.dirname(a.data.rstrip("/")) or ".",
                                      f"ids-{a.id_cases}")
    if rank == 0:
        make_id_dataset(id_dir, a.id_cases)
        ensure_data(a.data, a.cases, a.scale)
    dist.barrier()
    mine, nbatches = epoch_ids(a, rank, id_dir)
    gathered = [None] * world
    dist.all_gather_object(gathered, mine)
    problems, summary, moved = check_shards(gathered, a.id_cases, a.epochs)
    # negative control: with a reader seed that differs per rank, each rank shards its own
    # permutation, so the shards overlap and miss cases: the check must notice
    wrong, _ = epoch_ids(a, rank, id_dir, reader_seed=a.seed + 1000 + rank)
    gathered_wrong = [None] * world
    dist.all_gather_object(gathered_wrong, wrong)
    control = bool(check_shards(gathered_wrong, a.id_cases, a.epochs)[0]) if world > 1 else None
    if rank == 0:
        log(0, f"shards: {'OK' if not problems else 'PROBLEMS: ' + '; '.join(problems)}; "
               f"negative control detected: {control}")

    # 2. DDP training
    res, err = None, None
    if not a.skip_train:
        try:
            res = train(a, rank, world, device, dev_index)
        except Exception as e:
            err = f"{type(e).__name__}: {e}"
            traceback.print_exc()
    results = [None] * world
    dist.all_gather_object(results, {"rank": rank, "res": res, "err": err})
    if rank == 0:
        report(a, world, ndev, backend, why, device, summary, problems, moved, nbatches, results,
               control)
    dist.barrier()
    dist.destroy_process_group()
    sys.exit(1 if problems or control is False or any(r["err"] for r in results) else 0)


def report(a, world, ndev, backend, why, device, summary, problems, moved, nbatches, results,
           control):
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU"
    L = ["# Multi-GPU data parallelism: voxpipe shards under torchrun", "",
         f"Command: `torchrun --standalone --nproc_per_node={world} bench/ddp_shards.py "
         f"{' '.join(sys.argv[1:])}`", "",
         f"Machine: {gpu} x {ndev}, {os.cpu_count()} CPU cores; torch {torch.__version__}, "
         f"Python {platform.python_version()}. {world} ranks, backend {backend} ({why}).", "",
         f"## Shards ({a.id_cases} cases, batch {a.batch}, shuffle, pad_last_batch, "
         f"{a.epochs} epochs)", "",
         "| epoch | distinct cases per rank | samples per rank (with padding) | batches per rank "
         "| cases covered |", "|---:|---|---|---|---:|"]
    for s in summary:
        L.append(f"| {s['epoch']} | {s['cases_per_rank']} | {s['samples_per_rank']} | "
                 f"{s['batches_per_rank']} | {s['covered']} of {a.id_cases} |")
    L += ["", ("Disjoint and covering in every epoch: **yes**." if not problems else
               "**Problems:** " + "; ".join(problems)),
          f"Shards {'change' if moved else 'do not change'} between epochs (rank 0's cases); "
          f"len(loader) = {nbatches} batches on rank 0.",
          "Negative control (reader seeds differing per rank, so each rank shards a different "
          f"permutation): flagged by the same check: {control}.", "",
          f"## DDP training (MLPerf UNet3D, batch {a.batch} x {a.patch}^3 per rank, bf16)", "",
          "| rank | steps | step ms (median) | step ms (mean) | samples/s |",
          "|---:|---:|---:|---:|---:|"]
    ok = [r["res"] for r in results if r["res"]]
    for r in results:
        if r["err"]:
            L.append(f"| {r['rank']} | - | - | - | FAILED: {r['err'][:200]} |")
        elif r["res"]:
            x = r["res"]
            L.append(f"| {x['rank']} | {x['steps']} | {x['step_ms_median']:.1f} | "
                     f"{x['step_ms_mean']:.1f} | {x['samples_per_s']:.2f} |")
    if ok:
        tot = sum(x["samples_per_s"] for x in ok)
        head = np.array([x["param_head"] for x in ok])
        diff = float(np.abs(head - head[0]).max())
        sums = [x["param_sum"] for x in ok]
        same = diff == 0 and len(set(sums)) == 1
        L += ["", f"All ranks together: {tot:.2f} samples/s. Parameters after training "
              f"identical on every rank: {'yes' if same else 'NO'} (max difference of the "
              f"first 4096 values {diff:.3g}; sums {', '.join(f'{s:.6f}' for s in sums)})."]
        if ndev == 0:
            L.append("No GPU: the ranks ran on the CPU in float32 (a functional check).")
        elif world > ndev:
            L.append(f"The {world} ranks share {ndev} GPU(s): the per-rank rate is a "
                     "functional check, not a scaling measurement.")
    text = "\n".join(L) + "\n"
    print(text, flush=True)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(dict(world=world, backend=backend, why=why, summary=summary,
                           problems=problems, moved=moved, negative_control=control,
                           results=[{k: v for k, v in (r["res"] or {}).items()
                                     if k != "param_head"} for r in results]), f, indent=1)


if __name__ == "__main__":
    main()
