"""The scoreboard's Markdown leaderboard and its figure of score against wall time."""

from __future__ import annotations


def _g(value, digits=3) -> str:
    return "—" if value is None else f"{value:.{digits}g}"


def _seconds(run: dict) -> str:
    cpu = run.get("cpu_seconds")
    return f"{run['seconds']:.1f}" + ("" if cpu is None else f" ({cpu:.1f})")


def leaderboard(record: dict) -> list[dict]:
    """One row per method and objective at its largest budget, best max excess first."""
    best = {}
    for run in record["runs"]:
        key = (run["method"], run["objective"])
        if key not in best or run["steps"] > best[key]["steps"]:
            best[key] = run
    return sorted(best.values(), key=lambda run: run["max_excess"])


def render_markdown(record: dict) -> str:
    """The leaderboard, every run, the floors and the bank against the MR-VAEs."""
    data = record["dataset"]
    lines = [
        f"# Scoreboard: {data['name']} (n = {data['n']}, d = {data['d']}, k = {record['latent']})",
        "",
        f"Grid: {len(record['betas'])} β from {min(record['betas']):.3g} to "
        f"{max(record['betas']):.3g}; every method trained over β in "
        f"[{record['beta_range'][0]:.3g}, {record['beta_range'][1]:.3g}]; "
        f"{record['threads']} CPU thread(s). Excess: nats per example above the analytic "
        "optimum (exact, no sampling); excess/β: its scale-free version. Live: latents with "
        "rate > 0.01 nats at the grid's smallest β (the optimum's in brackets). Floor: the "
        "family's representation floor (an upper bound), max excess.",
        "",
        "## Leaderboard (largest budget)",
        "",
        "| rank | method | objective | steps | seconds (CPU) | max excess | mean excess | "
        "max excess/β | mean excess/β | live | floor |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    floors = record.get("floors", {})
    for rank, run in enumerate(leaderboard(record), 1):
        floor = floors.get(run["method"])
        lines.append(
            f"| {rank} | `{run['method']}` | {run['objective']} | {run['steps']} | "
            f"{_seconds(run)} | {_g(run['max_excess'])} | {_g(run['mean_excess'])} | "
            f"{_g(run['max_excess_over_beta'])} | {_g(run['mean_excess_over_beta'])} | "
            f"{run['live_latents']} ({run['optimum_live_latents']}) | "
            f"{_g(floor['max_excess']) if floor else '—'} |"
        )
    lines += [
        "",
        "## Every run",
        "",
        "| method | objective | steps | seconds (CPU) | max excess | mean excess | max excess/β | "
        "mean excess/β | live | variants (max excess) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for run in record["runs"]:
        variants = ", ".join(
            f"{name} {_g(v['max_excess'])}" for name, v in run.get("variants", {}).items()
        )
        lines.append(
            f"| `{run['method']}` | {run['objective']} | {run['steps']} | {_seconds(run)} | "
            f"{_g(run['max_excess'])} | {_g(run['mean_excess'])} | "
            f"{_g(run['max_excess_over_beta'])} | {_g(run['mean_excess_over_beta'])} | "
            f"{run['live_latents']} ({run['optimum_live_latents']}) | {variants or '—'} |"
        )
    if floors:
        lines += [
            "",
            "## Representation floors (fitted to the optimum; upper bounds)",
            "",
            "| method | max floor | mean floor | max floor/β | live | started from | seconds |",
            "|---|---|---|---|---|---|---|",
        ]
        for name, floor in floors.items():
            if floor is None:
                continue
            lines.append(
                f"| `{name}` | {_g(floor['max_excess'])} | {_g(floor['mean_excess'])} | "
                f"{_g(floor['max_excess_over_beta'])} | {floor['live_latents']} | "
                f"{floor['start']} | {floor['seconds']:.1f} |"
            )
    comparisons = [
        (what, other, rows)
        for key, what in (("equal_time", "wall"), ("equal_cpu_time", "CPU"))
        for other, rows in record.get(key, {}).items()
    ]
    for what, other, rows in comparisons:
        lines += [
            "",
            f"## `beta-vae-bank` against `{other}` at equal {what} time",
            "",
            f"(`{other}` interpolated log-log between its budgets at the bank's time; — "
            "outside them)",
            "",
            f"| objective | bank steps | seconds | bank max excess | {other} | ratio | "
            f"bank mean excess | {other} | ratio |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for row in rows:
            lines.append(
                f"| {row['objective']} | {row['steps']} | {row['seconds']:.1f} | "
                f"{_g(row['max_excess'])} | {_g(row[f'{other}_max_excess'])} | "
                f"{_g(row['ratio_max_excess'])} | {_g(row['mean_excess'])} | "
                f"{_g(row[f'{other}_mean_excess'])} | {_g(row['ratio_mean_excess'])} |"
            )
    check = record.get("bank_batched")
    if check:
        lines += [
            "",
            f"Bank trained batched against its {check['members']} members one by one "
            f"({check['steps']} exact steps each): {check['batched_seconds']:.2f} s against "
            f"{check['sequential_seconds']:.2f} s, {check['speedup']:.2f}× faster batched.",
        ]
    if record.get("partial"):
        lines += ["", "**Partial**: interrupted before every run finished."]
    return "\n".join(lines) + "\n"


def render_figure(record: dict, path) -> None:
    """Max and mean excess against wall time, a line per method and objective (exact solid,
    sampled dashed), each family's floor dotted."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from linvae._io import write_figure

    methods = sorted({run["method"] for run in record["runs"]})
    colours = {name: plt.get_cmap("tab10")(i % 10) for i, name in enumerate(methods)}
    figure, axes = plt.subplots(1, 2, figsize=(11, 4.2), layout="constrained")
    for axis, key, label in (
        (axes[0], "max_excess", "max excess over the grid (nats)"),
        (axes[1], "mean_excess", "mean excess over the grid (nats)"),
    ):
        for name in methods:
            for objective, style in (("exact", "-"), ("sampled", "--")):
                runs = sorted(
                    (r for r in record["runs"] if r["method"] == name and r["objective"] == objective),
                    key=lambda r: r["seconds"],
                )  # fmt: skip
                if runs:
                    axis.plot(
                        [r["seconds"] for r in runs],
                        [max(r[key], 1e-12) for r in runs],
                        style, marker="o", color=colours[name], label=f"{name} ({objective})",
                    )  # fmt: skip
            floor = record.get("floors", {}).get(name)
            if floor and floor[key] > 1e-9:  # a floor of 0 (round-off) is not drawn
                axis.axhline(floor[key], color=colours[name], linestyle=":", lw=1)
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_xlabel("wall time of training (s, one CPU thread)")
        axis.set_ylabel(label)
        axis.grid(True, which="both", alpha=0.3)
    axes[1].legend(fontsize=7, loc="best")
    data = record["dataset"]
    figure.suptitle(
        f"{data['name']} (d = {data['d']}, k = {record['latent']}): score against wall time; "
        "dotted: each family's floor (a floor of 0 is not drawn)"
    )
    write_figure(figure, path, dpi=120)
    plt.close(figure)
