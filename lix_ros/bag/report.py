"""Markdown and self-contained HTML (images inlined as base64 PNG) for `lix-bag eval` reports."""

from __future__ import annotations

import base64
import html
import io

import cv2
import numpy as np

from lix_ros.data.classes import CLASS_NAMES

SECTIONS = (("student_vs_gt", "Student vs ground truth"), ("teacher_vs_gt", "Teacher vs ground truth"),
            ("student_vs_teacher", "Student vs teacher (teacher as reference)"))

# /diagnostics keys worth a line in the summary, in the order a reader checks them
NODE_COUNTERS = (("frames_received", "received"), ("frames_paired", "paired"), ("frames_processed", "processed"),
                 ("frames_compared", "compared"), ("frames_dropped_stale", "dropped stale"),
                 ("unpaired_dropped", "unpaired"), ("frames_rejected", "rejected"),
                 ("hard_frames_captured", "hard frames"))


def _fmt(value) -> str:
    return "–" if value is None else f"{100 * value:.2f}"


def summary_lines(report: dict) -> list[str]:
    lines = [f"bag: {report['bag']} ({report['frames']} frames, mode {report['mode']})"]
    if report["partial"]:
        lines.append(f"PARTIAL: the bag ended in an unreadable part ({report['partial_reason']}); this report covers "
                     f"what could be read. `lix-bag repair {report['bag']} --out <new bag>` rewrites that part as a "
                     "normal bag for other tools")
    if report.get("teacher_not_run"):
        lines.append(f"NO TEACHER: {report['teacher_not_run']}")
    for key, title in SECTIONS:
        if report.get(key):
            lines.append(f"{title}: mIoU {_fmt(report[key]['miou'])}, pixel accuracy "
                         f"{_fmt(report[key]['pixel_accuracy'])}")
    for role in ("student", "teacher"):
        stats = report["latency"][role]
        if stats.get("count"):
            lines.append(f"{role} latency ({report['latency']['kind']}): median {stats['median_ms']:.1f} ms, "
                         f"p99 {stats['p99_ms']:.1f} ms")
    for node, values in report.get("node_diagnostics", {}).items():
        counters = ", ".join(f"{label} {values[key]}" for key, label in NODE_COUNTERS if key in values)
        lines.append(f"{node} (last /diagnostics): {counters}")
    return lines


def render_markdown(report: dict) -> str:
    out = ["# lix-bag eval report", ""] + [f"- {line}" for line in summary_lines(report)] + [""]
    available = [(k, t) for k, t in SECTIONS if report.get(k)]
    if available:
        out += ["| class | " + " | ".join(t for _, t in available) + " |",
                "|---|" + "---:|" * len(available)]
        for name in CLASS_NAMES:
            cells = [_fmt(report[k]["per_class_iou"].get(name)) for k, _ in available]
            if any(c != "–" for c in cells):
                out.append(f"| {name} | " + " | ".join(cells) + " |")
    if report["skipped"]:
        out += ["", f"{len(report['skipped'])} frames skipped; first: {report['skipped'][0]['reason']}"]
    return "\n".join(out) + "\n"


def _png(image_rgb: np.ndarray) -> str:
    _ok, buffer = cv2.imencode(".png", np.ascontiguousarray(image_rgb[..., ::-1]))
    return "data:image/png;base64," + base64.b64encode(buffer.tobytes()).decode()


def _confusion_png(matrix: list[list[int]], title: str) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    full = np.array(matrix, np.float64)
    m = full[:, :full.shape[0]]  # the last column (no valid prediction) still counts in each row's total
    present = (m.sum(0) + full.sum(1)) > 0
    m = m[np.ix_(present, present)] / np.maximum(full.sum(1)[present, None], 1)
    names = [n for n, p in zip(CLASS_NAMES, present) if p]
    fig, ax = plt.subplots(figsize=(0.5 * len(names) + 2, 0.5 * len(names) + 1.5))
    ax.imshow(m, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(names)), names, rotation=90, fontsize=8)
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.set(title=title, xlabel="prediction", ylabel="reference")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def render_html(report: dict, mosaics: list[np.ndarray]) -> str:
    e = html.escape
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>lix-bag eval</title><style>",
             "body{font-family:sans-serif;margin:2em;max-width:1400px} table{border-collapse:collapse}",
             "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}",
             "th:first-child,td:first-child{text-align:left}",
             ".partial{background:#fdd;padding:.5em;border:1px solid #c00} img{max-width:100%}",
             "</style></head><body><h1>lix-bag eval</h1><ul>"]
    for line in summary_lines(report):
        css = " class='partial'" if line.startswith("PARTIAL") else ""
        parts.append(f"<li{css}>{e(line)}</li>")
    parts.append("</ul><h2>Per-class IoU (%)</h2><table><tr><th>class</th>")
    available = [(k, t) for k, t in SECTIONS if report.get(k)]
    parts += [f"<th>{e(t)}</th>" for _, t in available] + ["</tr>"]
    for name in CLASS_NAMES:
        cells = [_fmt(report[k]["per_class_iou"].get(name)) for k, _ in available]
        if any(c != "–" for c in cells):
            parts.append(f"<tr><td>{e(name)}</td>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    parts.append("<tr><th>mIoU</th>" + "".join(f"<th>{_fmt(report[k]['miou'])}</th>" for k, _ in available)
                 + "</tr></table>")
    names = {"student": "Student vs ground truth", "teacher": "Teacher vs ground truth",
             "agreement": "Student vs teacher"}
    if report.get("confusion"):
        parts.append("<h2>Confusion matrices (row-normalised)</h2><div>")
        for key, matrix in report["confusion"].items():
            parts.append(f"<img alt='{e(names[key])}' src='{_confusion_png(matrix, names[key])}' "
                         "style='max-width:32%'>")
        parts.append("</div>")
    if mosaics:
        parts.append("<h2>Sample frames</h2><p>RGB | ground truth | student | teacher | disagreement (red)</p>")
        parts += [f"<p><img alt='frame {i}' src='{_png(m)}'></p>" for i, m in enumerate(mosaics)]
    parts.append("<h2>Latency</h2><table><tr><th>model</th><th>kind</th><th>frames</th><th>median (ms)</th>"
                 "<th>p99 (ms)</th></tr>")
    for role in ("student", "teacher"):
        s = report["latency"][role]
        if s.get("count"):
            parts.append(f"<tr><td>{role}</td><td>{e(report['latency']['kind'])}</td><td>{s['count']}</td>"
                         f"<td>{s['median_ms']:.1f}</td><td>{s['p99_ms']:.1f}</td></tr>")
    parts.append("</table></body></html>")
    return "\n".join(parts)
