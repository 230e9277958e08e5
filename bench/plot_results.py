"""PNG plots of a results folder written by bench/run_all.

- train_unet3d.json -> train_unet3d.png: samples/s per loader (the ceiling as a line) and the
  GPU-busy fraction;
- fg_experiment.json -> fg_experiment.png: foreground share and Dice per arm;
- ddp_shards.json -> ddp_shards.png: samples/s per rank;
- any other <name>.md with a markdown table -> <name>.png: the table's numeric columns as
  bars against its first column (best effort: a table it cannot read is skipped).

    python3 bench/plot_results.py bench/results [NAME ...]   # NAMEs: only those tables
"""
import json
import os
import re
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

OWN = ("train_unet3d", "fg_experiment", "ddp_shards")


def load(res, name):
    p = os.path.join(res, name + ".json")
    if not os.path.exists(p):
        return None
    with open(p) as f:
        return json.load(f)


def plot_train(res):
    d = load(res, "train_unet3d")
    if not d:
        return
    rows = [r for r in d["rows"] if "samples_per_s" in r]
    if not rows:
        return
    names = [r["loader"] for r in rows]
    colour = ["tab:gray" if n == "ceiling" else "tab:green" if n.startswith("voxpipe") else
              "tab:blue" if n.startswith("ref") else "tab:orange" for n in names]
    hatch = ["//" if n.endswith("-heavy") else "" for n in names]
    fig, ax = plt.subplots(1, 2, figsize=(13, 4.8))
    bars = ax[0].bar(names, [r["samples_per_s"] for r in rows], color=colour)
    for b, h in zip(bars, hatch):
        b.set_hatch(h)
    ceil = [r["samples_per_s"] for r in rows if r["loader"] == "ceiling"]
    if ceil:
        ax[0].axhline(ceil[0], color="k", ls="--", lw=1, label="ceiling (GPU tensors)")
        ax[0].axhline(0.97 * ceil[0], color="r", ls=":", lw=1, label="97% of the ceiling")
        ax[0].legend(loc="upper right", fontsize=8)
    ax[0].set_ylabel("training samples/s")
    ax[0].set_title("MLPerf UNet3D, batch %d, %d^3 (hatched: heavy chain)" %
                    (d["args"]["batch"], d["args"]["patch"]), fontsize=10)
    bars = ax[1].bar(names, [100 * r["gpu_busy"] for r in rows], color=colour)
    for b, h in zip(bars, hatch):
        b.set_hatch(h)
    ax[1].axhline(97, color="r", ls=":", lw=1, label="goal 97%")
    ax[1].set_ylim(0, 105)
    ax[1].set_ylabel("GPU busy in training steps (%)")
    ax[1].legend(loc="lower left", fontsize=8)
    for a in ax:
        a.tick_params(axis="x", rotation=40, labelsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(res, "train_unet3d.png"), dpi=110)
    plt.close(fig)


def plot_fg(res):
    d = load(res, "fg_experiment")
    if not d:
        return
    keys = [("fg_patches", "patches with fg"), ("dice_kidney", "Dice kidney"),
            ("dice_tumour", "Dice tumour"), ("dice_fg", "Dice fg")]
    fig, ax = plt.subplots(figsize=(8, 4.2))
    w = 0.8 / len(d["rows"])
    for i, r in enumerate(d["rows"]):
        xs = [k + i * w for k in range(len(keys))]
        ax.bar(xs, [r[k] if r[k] == r[k] else 0 for k, _ in keys], width=w, label=r["arm"])
    ax.set_xticks([k + w * (len(d["rows"]) - 1) / 2 for k in range(len(keys))])
    ax.set_xticklabels([t for _, t in keys])
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize=8)
    ax.set_title("Biased vs random crop after the same training budget", fontsize=10)
    fig.tight_layout()
    fig.savefig(os.path.join(res, "fg_experiment.png"), dpi=110)
    plt.close(fig)


def plot_ddp(res):
    d = load(res, "ddp_shards")
    if not d or not any(d.get("results", [])):
        return
    rs = [r for r in d["results"] if r]
    fig, ax = plt.subplots(figsize=(5, 3.6))
    ax.bar([f"rank {r['rank']}" for r in rs], [r["samples_per_s"] for r in rs], color="tab:green")
    ax.set_ylabel("samples/s")
    ax.set_title(f"DDP, {d['world']} ranks, {d['backend']}", fontsize=10)
    fig.tight_layout()
    fig.savefig(os.path.join(res, "ddp_shards.png"), dpi=110)
    plt.close(fig)


_NUM = re.compile(r"^\s*\**\s*([-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?)\s*(?:ms|s|x|×|%|us|µs)?\**\s*$",
                  re.I)


def first_table(text):
    lines = [ln.strip() for ln in text.splitlines()]
    for i in range(len(lines) - 2):
        if lines[i].startswith("|") and re.match(r"^\|[\s:|-]+\|$", lines[i + 1]):
            head = [c.strip() for c in lines[i].strip("|").split("|")]
            body = []
            for ln in lines[i + 2:]:
                if not ln.startswith("|"):
                    break
                body.append([c.strip() for c in ln.strip("|").split("|")])
            return head, body
    return None


def plot_table(res, name):
    with open(os.path.join(res, name + ".md")) as f:
        t = first_table(f.read())
    if not t:
        return False
    head, body = t
    body = [r for r in body if len(r) == len(head)]
    cols = []
    for j in range(1, len(head)):
        vals = [_NUM.match(r[j]) for r in body]
        if body and all(vals):
            cols.append((head[j], [float(v.group(1)) for v in vals]))
    if not cols:
        return False
    cols = cols[:4]
    fig, axes = plt.subplots(1, len(cols), figsize=(4.2 * len(cols), 4), squeeze=False)
    labels = [r[0][:40] for r in body]
    for ax, (h, v) in zip(axes[0], cols):
        ax.barh(range(len(v)), v, color="tab:blue")
        ax.set_yticks(range(len(v)))
        ax.set_yticklabels(labels, fontsize=7)
        ax.invert_yaxis()
        ax.set_title(h[:50], fontsize=9)
    fig.suptitle(name, fontsize=10)
    fig.tight_layout()
    fig.savefig(os.path.join(res, name + ".png"), dpi=100)
    plt.close(fig)
    return True


def main():
    res = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "results")
    for fn in (plot_train, plot_fg, plot_ddp):
        try:
            fn(res)
        except Exception as e:  # one bad file must not cost the other plots
            print(f"{fn.__name__}: {type(e).__name__}: {e}", file=sys.stderr)
    only = set(sys.argv[2:])
    for f in sorted(os.listdir(res)):
        name, ext = os.path.splitext(f)
        if ext != ".md" or name in OWN or name == "SUMMARY" or (only and name not in only):
            continue
        try:
            print(f"{name}: {'plotted' if plot_table(res, name) else 'no numeric table'}")
        except Exception as e:
            print(f"{name}: {type(e).__name__}: {e}", file=sys.stderr)


if __name__ == "__main__":
    main()
