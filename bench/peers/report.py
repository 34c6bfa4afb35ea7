"""The report of a peers run: the markdown section, the PNG chart, RESULTS.md's section.

`section(results, image)` renders bench/peers/results.json as the markdown section
"## Side by side with n8n and Node-RED (issue 6)"; `chart(results, path)` draws throughput
against concurrency per workflow (log scale) for the three systems and the raw ceilings;
`update_results_md(section)` replaces that section of bench/RESULTS.md (bench/engine.py's
write_section). Rerender without measuring:

    .venv/bin/python bench/peers/report.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
BENCH = HERE.parent
HEADER = "## Side by side with n8n and Node-RED (issue 6)"
SYSTEMS = [
    ("conv3n", "conv3n"),
    ("conv3n-2", "conv3n x2"),
    ("n8n", "n8n"),
    ("node-red", "Node-RED"),
]
OURS = ("conv3n", "conv3n-2")
"""One server process, and `conv3n serve --processes 2` (decision 0015)."""
CEILINGS = [
    ("fastapi", "raw ceiling (FastAPI on uvicorn)"),
    ("uvloop", "bare ASGI on uvicorn (reference)"),
]
SHARE_OF = "fastapi"
"""The ceiling the shares are of: the same stack as `conv3n serve` (decision 0010)."""
TITLES = {
    "a": "(a) webhook → set 2 fields → respond",
    "b": "(b) webhook → 20 set/condition → respond",
    "c": "(c) webhook → code: sum 1,000 numbers → respond",
    "c-call": "(c-call) as (c), conv3n's default: a process per call",
    "d": "(d) webhook → HTTP call → transform → respond",
}


PEER_OF = {"c-call": "c"}
"""conv3n-only workflows and the peers' workflow they are compared with."""


def _run(results: dict[str, Any], system: str, workflow: str, conns: str) -> dict[str, Any] | None:
    if system not in OURS:
        workflow = PEER_OF.get(workflow, workflow)
    entry = results.get("systems", {}).get(system, {}).get("workflows", {}).get(workflow, {})
    run = entry.get("runs", {}).get(conns)
    return run if isinstance(run, dict) else None


def _skipped(results: dict[str, Any], system: str, workflow: str) -> bool:
    entry = results.get("systems", {}).get(system, {}).get("workflows", {}).get(workflow)
    return entry is not None and entry.get("status") != "ok"


def _ceiling(results: dict[str, Any], loop: str, conns: str) -> dict[str, Any] | None:
    run = results.get("ceiling", {}).get(loop, {}).get(conns)
    return run if isinstance(run, dict) else None


def _rps(run: dict[str, Any] | None) -> str:
    if run is None:
        return "—"
    if not run["requests"]:
        return "0 (none answered)"
    return f"{run['rps']:,.0f}" if run["rps"] >= 100 else f"{run['rps']:.1f}"


def _ms(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.2g}" if value < 1 else f"{value:.1f}"


def _latency(run: dict[str, Any] | None) -> str:
    if run is None or not run["requests"]:
        return "—"
    text = f"{_ms(run['p50_ms'])} / {_ms(run['p99_ms'])}"
    errors = run["non_2xx"] + run["socket_errors"]
    return f"{text} (**{errors:,} errors**)" if errors else text


def _ratio(a: dict[str, Any] | None, b: dict[str, Any] | None) -> str:
    if a is None or b is None or not b["rps"] or not a["rps"]:
        return "—"
    value = a["rps"] / b["rps"]
    return f"{value:,.0f}x" if value >= 10 else f"{value:.2g}x"


def _share(a: dict[str, Any] | None, ceiling: dict[str, Any] | None) -> str:
    if a is None or ceiling is None or not ceiling["rps"]:
        return "—"
    share = 100 * a["rps"] / ceiling["rps"]
    return f"{share:.0f} %" if share >= 1 else f"{share:.2f} %"


def _mib(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f} MiB"


def _seconds(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f} s"


def _intro(results: dict[str, Any]) -> list[str]:
    meta = results["meta"]
    machine, versions = meta["machine"], meta["versions"]
    ran = ", ".join(
        f"{label} {versions.get(key, '?')}"
        for key, label in SYSTEMS
        if key in results.get("systems", {})
    )
    lines = [
        HEADER,
        "",
        f"Measured {meta['date']} on {machine['cores']} cores ({machine['cpu']}, "
        f"{machine['memory_gib']} GiB) by `make bench-peers` (bench/peers/run.py): {ran}; "
        f"Node {versions.get('node', '?')}, Python {versions['python']}, "
        f"{versions['uvicorn']}, wrk {versions['wrk']}.",
        "",
        f"Each point: wrk, 1 thread, {meta['duration_s']:g} s after a warm-up, POST of "
        '`{"name": "bench", "n": 3}` to 127.0.0.1; server and load share the machine. '
        "conv3n stores every execution (SQLite, default settings); n8n runs with its defaults "
        "(saves every execution, isolated expression engine); Node-RED keeps nothing. Latency "
        "is p50 / p99 in ms. The raw ceiling is a FastAPI route answering a constant JSON "
        "on uvicorn with uvloop and httptools, the stack of `conv3n serve` (bench/peers/"
        "ceiling.py, decision 0010), measured in the same run; a bare ASGI app on the same "
        "uvicorn is shown beside it for reference. conv3n's (c) runs the code node with "
        "`isolation: warm` (a limited process kept for the node, as Node-RED reuses one VM "
        "context and n8n one task runner; decisions 0013 and 0018); c-call is the same node in the "
        "default `isolation: call` (a fresh process per call), compared with the peers' (c). "
        "conv3n x2 is `conv3n serve --processes 2`: two server processes on one port and one "
        "SQLite file (decision 0015), measured on (a), (b) and (d); every other conv3n figure "
        "is one process.",
    ]
    stamps = sorted(
        entry["measured_at"]
        for system in results.get("systems", {}).values()
        for entry in system.get("workflows", {}).values()
        if "measured_at" in entry
    )
    if stamps and stamps[0][:13] != stamps[-1][:13]:  # merged from runs hours or days apart
        lines += [
            "",
            f"The figures come from runs between {stamps[0]} and {stamps[-1]} "
            "(each workflow's `measured_at` in results.json); the raw ceiling is from the "
            "latest run that measured it.",
        ]
    if meta.get("quick"):
        lines += [
            "",
            "**Smoke run (`--quick`): short points on a busy machine; these figures "
            "are noise and only show that every path works. Run `make bench-peers` on a "
            "quiet machine for figures.**",
        ]
    return lines


def _throughput(results: dict[str, Any], workflows: list[str], conns: list[str]) -> list[str]:
    lines = [
        "",
        "| workflow | conn. | conv3n req/s | conv3n x2 req/s | n8n req/s | Node-RED req/s "
        "| ceiling req/s | conv3n / n8n | conv3n / Node-RED | conv3n x2 / Node-RED "
        "| conv3n | conv3n x2 | n8n | Node-RED |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for workflow in workflows:
        for c in conns:
            mine, two, n8n, red = (_run(results, s, workflow, c) for s, _ in SYSTEMS)
            ceiling = _ceiling(results, SHARE_OF, c)
            shares = " | ".join(_share(run, ceiling) for run in (mine, two, n8n, red))
            lines.append(
                f"| {workflow} | {c} | {_rps(mine)} | {_rps(two)} | {_rps(n8n)} | {_rps(red)} "
                f"| {_rps(ceiling)} | {_ratio(mine, n8n)} | {_ratio(mine, red)} "
                f"| {_ratio(two, red)} | {shares} |"
            )
    lines += [
        "",
        "The last four columns: each system's throughput as a share of the raw "
        "ceiling (FastAPI on uvicorn, one process) at the same concurrency.",
    ]
    return lines


def _latencies(results: dict[str, Any], workflows: list[str], conns: list[str]) -> list[str]:
    lines = [
        "",
        "| workflow | conn. | " + " | ".join(f"{label} p50 / p99" for _, label in SYSTEMS) + " |",
        "|---|---|" + "---|" * len(SYSTEMS),
    ]
    for workflow in workflows:
        for c in conns:
            cells = " | ".join(_latency(_run(results, s, workflow, c)) for s, _ in SYSTEMS)
            lines.append(f"| {workflow} | {c} | {cells} |")
    return lines


def _ceiling_table(results: dict[str, Any], conns: list[str]) -> list[str]:
    lines = [
        "",
        "| raw ceiling | " + " | ".join(f"{c} conn. req/s" for c in conns) + " |",
        "|---|" + "---|" * len(conns),
    ]
    for loop, label in CEILINGS:
        if loop in results.get("ceiling", {}):
            cells = " | ".join(_rps(_ceiling(results, loop, c)) for c in conns)
            lines.append(f"| {label} | {cells} |")
    return lines


def _resources(results: dict[str, Any], workflows: list[str]) -> list[str]:
    lines = [
        "",
        "| system | memory idle | memory peak under load | start → healthy | "
        "start → first webhook answered | one-shot CLI run, median |",
        "|---|---|---|---|---|---|",
    ]
    for key, label in SYSTEMS:
        entry = results.get("systems", {}).get(key)
        if entry is None:
            continue
        shots = []
        for workflow in workflows:
            shot = entry.get("one_shot", {}).get(workflow)
            if shot:
                shots.append(f"{workflow}: {_seconds(shot['median_s'])}")
        cli = {"conv3n": "`conv3n run` (of 5)", "n8n": "`n8n execute --id` (of 3)"}.get(key)
        one_shot = f"{cli} {', '.join(shots)}" if shots and cli else "—"
        start = entry.get("start", {})
        lines.append(
            f"| {label} | {_mib(entry.get('rss_idle_mib'))} | {_mib(entry.get('rss_peak_mib'))} "
            f"| {_seconds(start.get('healthy_s'))} | {_seconds(start.get('first_webhook_s'))} "
            f"| {one_shot} |"
        )
    return lines


def _rss_by_workflow(results: dict[str, Any], workflows: list[str]) -> list[str]:
    """Peak memory of each system's process tree per workflow (the largest of its points),
    with the plain sum of its processes' RSS beside it."""
    present = [(key, label) for key, label in SYSTEMS if key in results.get("systems", {})]
    lines = [
        "",
        "| memory peak of the process tree (sum of RSS) | "
        + " | ".join(label for _, label in present)
        + " |",
        "|---|" + "---|" * len(present),
    ]
    for workflow in workflows:
        cells = []
        for key, _ in present:
            mine = workflow if key in OURS else PEER_OF.get(workflow, workflow)
            runs = results["systems"][key].get("workflows", {}).get(mine, {}).get("runs", {})
            peaks = [run["rss_peak_mib"] for run in runs.values() if run.get("rss_peak_mib")]
            sums = [run["rss_sum_peak_mib"] for run in runs.values() if run.get("rss_sum_peak_mib")]
            cell = _mib(max(peaks)) if peaks else "—"
            cells.append(f"{cell} ({_mib(max(sums))})" if peaks and sums else cell)
        lines.append(f"| {workflow} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Memory is the main process's RSS plus each child's USS (the pages only that child "
        "uses; its RSS would count again the libraries it shares with its parent), as "
        "bench/server.py counts; in brackets, every process's RSS added up. conv3n's tree is "
        "the server and its SQLite writer process, plus the two warm processes for (c) and the "
        "two code workers and their call processes for c-call; conv3n x2's is two servers and "
        "their two writers.",
    ]
    return lines


MB = 1_000_000 / 2**20
"""One MB (the targets' unit) in MiB (the unit the figures are measured in)."""


def _verdict(ok: bool | None) -> str:
    return "—" if ok is None else "yes" if ok else "**no**"


def _throughput_targets(
    results: dict[str, Any], ours: str, prefix: str, workflow: str, conns: str
) -> list[tuple[str, str, bool | None]]:
    """The req/s and p99 targets of one of our systems on one workflow and concurrency."""
    mine_run = _run(results, ours, workflow, conns)
    red_run = _run(results, "node-red", workflow, conns)
    n8n_run = _run(results, "n8n", workflow, conns)
    mine, red, n8n = (
        run["rps"] if run and run["requests"] else None for run in (mine_run, red_run, n8n_run)
    )
    share = 0.5 if workflow == "c" else 1.0
    floor = 20 if workflow == "c" else 50
    name = f"{prefix}({workflow}) c={conns}"
    rows: list[tuple[str, str, bool | None]] = []
    if mine and red:
        rows.append(
            (
                f"{name}: req/s ≥ {share:g}x Node-RED",
                f"{mine:,.0f} / {red:,.0f} = {mine / red:.2f}x",
                mine >= share * red,
            )
        )
    if mine and n8n:
        rows.append((f"{name}: req/s ≥ {floor}x n8n", f"{mine / n8n:,.0f}x", mine >= floor * n8n))
    if workflow != "c" and mine and red and mine_run and red_run:
        rows.append(
            (
                f"{name}: p99 ≤ 2x Node-RED's",
                f"{mine_run['p99_ms']:.1f} ms against 2 x {red_run['p99_ms']:.1f} ms",
                mine_run["p99_ms"] <= 2 * red_run["p99_ms"],
            )
        )
    return rows


def _peaks(results: dict[str, Any], system: str) -> dict[str, float]:
    """The peak memory of a system per workflow (the largest of its points)."""
    entry = results.get("systems", {}).get(system, {})
    return {
        workflow: max(
            (run.get("rss_peak_mib") or 0 for run in data.get("runs", {}).values()), default=0
        )
        for workflow, data in entry.get("workflows", {}).items()
    }


def _targets(results: dict[str, Any]) -> list[str]:
    """Issue 6's targets, each with the figure of this run beside it."""
    rows: list[tuple[str, str, bool | None]] = []
    for ours, prefix in (("conv3n", ""), ("conv3n-2", "conv3n x2 ")):
        for workflow in ("a", "b", "d", "c"):
            for conns in ("10", "50"):
                rows += _throughput_targets(results, ours, prefix, workflow, conns)
    rss_groups = (
        ("conv3n", "", "server and its SQLite writer ((a), (b))", ("a", "b")),
        ("conv3n", "", "server, SQLite writer and HTTP client ((d))", ("d",)),
        ("conv3n", "", "with the code's processes ((c), c-call)", ("c", "c-call")),
        ("conv3n-2", "conv3n x2 ", "two servers and their writers", ("a", "b", "d")),
    )
    for ours, prefix, what, group in rss_groups:
        peaks = _peaks(results, ours)
        measured = [peaks[workflow] for workflow in group if peaks.get(workflow)]
        if measured:
            peak = max(measured)
            rows.append(
                (
                    f"{prefix}peak memory ≤ 100 MB (RSS; children: USS), {what}",
                    f"{peak:.1f} MiB = {peak / MB:.1f} MB",
                    peak <= 100 * MB,
                )
            )
    entry = results.get("systems", {}).get("conv3n", {})
    start = entry.get("start", {})
    if start.get("first_webhook_s") is not None:
        rows.append(
            (
                "start to serving webhooks < 1 s (first webhook answered)",
                f"{start['first_webhook_s']:.2f} s (healthy after {start['healthy_s']:.2f} s)",
                start["first_webhook_s"] < 1.0,
            )
        )
    for workflow, shot in sorted(entry.get("one_shot", {}).items()):
        rows.append(
            (
                f"`conv3n run` ({workflow}) ≤ 0.4 s",
                f"{shot['median_s']:.2f} s",
                shot["median_s"] <= 0.4,
            )
        )
    if not rows:
        return []
    lines = ["", "| target (issue 6) | this run | met |", "|---|---|---|"]
    lines += [f"| {target} | {figure} | {_verdict(ok)} |" for target, figure, ok in rows]
    return lines


def _notes(results: dict[str, Any]) -> list[str]:
    notes = []
    for key, label in SYSTEMS:
        failed = results.get("systems", {}).get(key, {}).get("error")
        if failed:
            notes.append(f"- {label}: the run failed: {failed.splitlines()[0][:300]}")
        workflows = results.get("systems", {}).get(key, {}).get("workflows", {})
        for workflow, entry in sorted(workflows.items()):
            if entry.get("status") != "ok":
                notes.append(f"- {label} ({workflow}): skipped: {entry.get('note', '?')}")
    return ["", "Not measured:", *notes] if notes else []


def measured(results: dict[str, Any]) -> tuple[list[str], list[str]]:
    """The workflows and concurrencies that any system has figures for."""
    workflows: set[str] = set()
    conns: set[str] = set()
    for entry in results.get("systems", {}).values():
        for workflow, data in entry.get("workflows", {}).items():
            workflows.add(workflow)
            conns.update(data.get("runs", {}))
    conns.update(*(runs.keys() for runs in results.get("ceiling", {}).values()))
    return sorted(workflows), sorted(conns, key=int)


def section(results: dict[str, Any], image: str) -> str:
    workflows, conns = measured(results)
    lines = _intro(results)
    lines += _throughput(results, workflows, conns)
    lines += _latencies(results, workflows, conns)
    lines += _ceiling_table(results, conns)
    lines += _resources(results, workflows)
    lines += _rss_by_workflow(results, workflows)
    lines += _targets(results)
    lines += _notes(results)
    lines += ["", f"![throughput against concurrency]({image})"]
    return "\n".join(lines) + "\n"


def chart(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    workflows, conns = measured(results)
    columns = 2 if len(workflows) > 1 else 1
    rows = (len(workflows) + 1) // 2 if columns == 2 else 1
    figure, axes = plt.subplots(rows, columns, figsize=(6 * columns, 4.2 * rows), squeeze=False)
    xs = list(range(len(conns)))
    styles = {
        "conv3n": ("#1f77b4", "o", "-"),
        "n8n": ("#ff7f0e", "s", "-"),
        "node-red": ("#d62728", "^", "-"),
        "conv3n-2": ("#17becf", "D", "-"),
    }
    for index, workflow in enumerate(workflows):
        axis = axes[index // columns][index % columns]
        for key, label in SYSTEMS:
            values = [(x, _run(results, key, workflow, c)) for x, c in zip(xs, conns, strict=True)]
            points = [(x, run["rps"]) for x, run in values if run is not None and run["rps"]]
            if points:
                color, marker, line = styles[key]
                axis.plot(
                    *zip(*points, strict=True),
                    color=color,
                    marker=marker,
                    linestyle=line,
                    label=label,
                    linewidth=2,
                )
        for loop, label in CEILINGS:
            values = [(x, _ceiling(results, loop, c)) for x, c in zip(xs, conns, strict=True)]
            points = [(x, run["rps"]) for x, run in values if run is not None]
            if points:
                axis.plot(
                    *zip(*points, strict=True),
                    color="gray",
                    marker=".",
                    linestyle="--" if loop == SHARE_OF else ":",
                    label=label,
                )
        skipped = [label for key, label in SYSTEMS if _skipped(results, key, workflow)]
        if skipped:
            axis.text(
                0.02,
                0.02,
                "not measured: " + ", ".join(skipped),
                fontsize=8,
                transform=axis.transAxes,
                color="dimgray",
            )
        axis.set_yscale("log")
        axis.set_xticks(xs, [f"{c}" for c in conns])
        axis.set_xlabel("concurrent connections")
        axis.set_ylabel("requests/s (log scale)")
        axis.set_title(TITLES.get(workflow, workflow), fontsize=10)
        axis.grid(True, which="both", alpha=0.3)
        axis.legend(fontsize=8, loc="best")
    for index in range(len(workflows), rows * columns):
        axes[index // columns][index % columns].axis("off")
    meta = results["meta"]
    title = (
        f"Webhook throughput, {meta['machine']['cores']} cores ({meta['machine']['cpu']}), "
        f"{meta['date']}"
    )
    if meta.get("quick"):
        title += " — smoke run, noisy"
    figure.suptitle(title, fontsize=11)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def update_results_md(text: str, results_md: Path = BENCH / "RESULTS.md") -> None:
    """Replace the section in bench/RESULTS.md (the helper of bench/engine.py)."""
    sys.path.insert(0, str(BENCH))
    from engine import write_section

    write_section(text, results_md)


def main() -> None:
    results = json.loads((HERE / "results.json").read_text())
    (HERE / "RESULTS-peers.md").write_text(section(results, "throughput.png"))
    chart(results, HERE / "throughput.png")
    print(section(results, "throughput.png"))


if __name__ == "__main__":
    main()
