#!/usr/bin/python3
"""chart.py CSV PNG: the soak's per-second figures as one PNG (matplotlib, no display):
RSS, open descriptors, open connections, and the running totals of connections opened by the
clients, accepted, and records written and dropped."""
import csv
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main(src: str, dst: str) -> None:
    with open(src) as f:
        rows = list(csv.DictReader(f))
    t = [float(r["t"]) for r in rows]

    def col(k, scale=1.0):
        return [float(r[k]) * scale for r in rows]
    fig, ax = plt.subplots(4, 1, figsize=(10, 11), sharex=True)
    ax[0].plot(t, col("rss_kb", 1 / 1024), color="tab:red")
    ax[0].set_ylabel("RSS (MiB)")
    ax[1].plot(t, col("fds"), color="tab:purple")
    ax[1].set_ylabel("open descriptors")
    ax[2].plot(t, col("open"), color="tab:blue")
    ax[2].set_ylabel("open connections")
    for k, style in (("clients", "k-"), ("accepted", "c--"), ("written", "g-"),
                     ("dropped", "r-")):
        ax[3].plot(t, col(k), style, label=k)
    ax[3].set_ylabel("connections / records")
    ax[3].legend(loc="upper left")
    ax[3].set_xlabel("seconds")
    fig.suptitle("linesman soak (1 s samples)")
    fig.tight_layout()
    fig.savefig(dst, dpi=80)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
