"""Plots every panel of a Grafana dashboard from a Prometheus's data.

    plot_dashboard.py DASHBOARD.json PROMETHEUS_URL START END OUT.png

Each panel's queries run as Grafana would run them with every variable at
"All" (query_range over START..END, Unix seconds); each series is one line,
named by the target's legendFormat. Stat panels show their last values.
"""

import json
import re
import sys
import urllib.parse
import urllib.request

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

STEP = 5


def fill(expr):
    for var, value in (("$__rate_interval", "30s"), ("$__range", "5m"),
                       ("$node", ".*"), ("$namespace", ".*"), ("$pod", ".*")):
        expr = expr.replace(var, value)
    return expr


def query_range(url, expr, start, end):
    q = urllib.parse.urlencode({"query": fill(expr), "start": start, "end": end, "step": STEP})
    with urllib.request.urlopen(f"{url}/api/v1/query_range?{q}", timeout=30) as r:
        body = json.load(r)
    if body.get("status") != "success":
        raise SystemExit(f"query failed: {expr}: {body}")
    return body["data"]["result"]


def legend(fmt, labels):
    text = re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: labels.get(m.group(1), ""), fmt or "")
    return text.strip() or ",".join(f"{k}={v}" for k, v in labels.items())


def scale(unit, values):
    if unit == "bytes":
        return [v / 2**20 for v in values], "MiB"
    if unit == "Bps":
        return [v / 2**10 for v in values], "KiB/s"
    if unit == "percentunit":
        return [v * 100 for v in values], "%"
    return values, {"s": "seconds", "cores": "cores", "reqps": "req/s"}.get(unit, "")


def main():
    dash_path, url, start, end, out = sys.argv[1:6]
    start, end = float(start), float(end)
    dash = json.load(open(dash_path))
    panels = [p for p in dash["panels"] if p.get("targets")]
    cols = 3
    rows = (len(panels) + cols - 1) // cols
    plt.style.use("dark_background")
    fig, axes = plt.subplots(rows, cols, figsize=(6 * cols, 3.4 * rows))
    for ax in axes.flat[len(panels):]:
        ax.axis("off")
    for ax, panel in zip(axes.flat, panels):
        unit = panel.get("fieldConfig", {}).get("defaults", {}).get("unit", "")
        label = ""
        for target in panel["targets"]:
            for series in query_range(url, target["expr"], start, end):
                xs = [(float(t) - start) / 60 for t, _ in series["values"]]
                raw = [float(v) for _, v in series["values"]]
                ys, label = scale(unit, raw)
                ax.plot(xs, ys, linewidth=1.2, label=legend(target.get("legendFormat"), series["metric"])[:40])
        ax.set_title(panel["title"], fontsize=10, loc="left")
        ax.set_xlabel("minutes", fontsize=8)
        ax.set_ylabel(label, fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.2)
        handles, _ = ax.get_legend_handles_labels()
        if handles:
            ax.legend(fontsize=6, loc="upper left", ncol=2)
        else:
            ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
    fig.suptitle(f"{dash['title']}: every panel of {dash_path.split('/')[-1]}, from Prometheus", fontsize=12)
    fig.tight_layout()
    fig.savefig(out, dpi=80)


if __name__ == "__main__":
    main()
