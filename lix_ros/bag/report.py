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


def _figure_png(fig) -> str:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _confusion_png(matrix: list[list[int]], title: str) -> str:
    """Row-normalised confusion matrix with its values in the cells and a colour bar."""
    plt = _pyplot()
    full = np.array(matrix, np.float64)
    m = full[:, :full.shape[0]]  # the last column (no valid prediction) still counts in each row's total
    present = (m.sum(0) + full.sum(1)) > 0
    m = m[np.ix_(present, present)] / np.maximum(full.sum(1)[present, None], 1)
    names = [n for n, p in zip(CLASS_NAMES, present) if p]
    fig, ax = plt.subplots(figsize=(0.55 * len(names) + 2.5, 0.55 * len(names) + 1.8))
    shown = ax.imshow(m, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.04, label="share of the reference row")
    for i in range(len(names)):
        for j in range(len(names)):
            if m[i, j] >= 0.01:
                ax.text(j, i, f"{m[i, j]:.2f}"[1:] if m[i, j] < 1 else "1", ha="center", va="center", fontsize=7,
                        color="white" if m[i, j] > 0.5 else "black")
    ax.set_xticks(range(len(names)), names, rotation=90, fontsize=8)
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.set(title=title, xlabel="prediction", ylabel="reference")
    fig.tight_layout()
    return _figure_png(fig)


def _class_bars_png(report: dict, available: list[tuple[str, str]]) -> str:
    """Per-class IoU as grouped horizontal bars; each class labelled with its reference pixel count."""
    plt = _pyplot()
    reference = report[available[0][0]]["support"]
    names = [n for n in CLASS_NAMES if any(report[k]["per_class_iou"].get(n) is not None for k, _ in available)]
    fig, ax = plt.subplots(figsize=(8, 0.42 * len(names) + 1.2))
    height = 0.8 / len(available)
    for i, (key, title) in enumerate(available):
        values = [100 * (report[key]["per_class_iou"].get(n) or 0) for n in names]
        ax.barh(np.arange(len(names)) + i * height, values, height, label=title)
    ax.set_yticks(np.arange(len(names)) + height * (len(available) - 1) / 2,
                  [f"{n} ({reference.get(n, 0) / 1e3:.0f} k px)" for n in names], fontsize=8)
    ax.invert_yaxis()
    ax.set(xlim=(0, 100), xlabel="IoU (%)")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return _figure_png(fig)


def _over_time_png(report: dict) -> str | None:
    """Per-frame mIoU and latency over the drive, and the latency histogram."""
    frames = report["per_frame"]
    roles = [r for r in ("student", "teacher") if any(f"{r}_miou" in f or f"{r}_ms" in f for f in frames)]
    if not frames or not roles:
        return None
    plt = _pyplot()
    fig, (top, middle, bottom) = plt.subplots(3, 1, figsize=(10, 7.5))
    t0 = frames[0]["stamp"]
    for role in roles:
        points = [((f["stamp"] - t0) / 1e9, 100 * f[f"{role}_miou"]) for f in frames if f"{role}_miou" in f]
        if points:
            top.plot(*zip(*points), marker=".", label=role)
        times = [((f["stamp"] - t0) / 1e9, f[f"{role}_ms"]) for f in frames if f"{role}_ms" in f]
        if times:
            middle.plot(*zip(*times), marker=".", label=role)
            bottom.hist([ms for _, ms in times], bins=30, alpha=0.6, label=role)
    top.set(ylabel="frame mIoU vs GT (%)", title="per frame")
    middle.set(xlabel="time in the bag (s)", ylabel="latency (ms)")
    bottom.set(xlabel=f"latency (ms): {report['latency']['kind']}", ylabel="frames")
    for ax in (top, middle, bottom):
        if ax.has_data():
            ax.legend(fontsize=8)
    fig.tight_layout()
    return _figure_png(fig)


def _legend(report: dict) -> str:
    from lix_ros.data.classes import palette

    colors = palette()
    present = {n for k, _ in SECTIONS if report.get(k) for n, v in report[k]["support"].items() if v}
    present = present or set(CLASS_NAMES)
    items = [f"<span class='swatch'><i style='background:rgb{tuple(int(c) for c in colors[i])}'></i>"
             f"{html.escape(name)}</span>" for i, name in enumerate(CLASS_NAMES) if name in present]
    return "<p class='legend'>" + "".join(items) + "</p>"


def _stamp(ns: int) -> str:
    return f"{ns // 1_000_000_000}.{ns % 1_000_000_000:09d}"


def _worst_frames(report: dict, count: int = 8) -> list[str]:
    key = "student_miou" if any("student_miou" in f for f in report["per_frame"]) else "student_teacher_agreement"
    ranked = sorted((f for f in report["per_frame"] if key in f), key=lambda f: f[key])[:count]
    if not ranked:
        return []
    what = "student mIoU vs GT" if key == "student_miou" else "student-teacher pixel agreement"
    rows = [f"<h2>Worst frames ({what})</h2><table><tr><th>stamp (s)</th><th>{what} (%)</th>"
            "<th>teacher mIoU vs GT (%)</th><th>student latency (ms)</th></tr>"]
    for f in ranked:
        teacher = f"{100 * f['teacher_miou']:.1f}" if "teacher_miou" in f else "–"
        latency = f"{f['student_ms']:.1f}" if "student_ms" in f else "–"
        rows.append(f"<tr><td>{_stamp(f['stamp'])}</td><td>{100 * f[key]:.1f}</td><td>{teacher}</td>"
                    f"<td>{latency}</td></tr>")
    return [*rows, "</table>"]


STYLE = """body{font-family:sans-serif;margin:2em;max-width:1400px;color:#222}
table{border-collapse:collapse;margin:.5em 0}
td,th{border:1px solid #ccc;padding:3px 8px;text-align:right} th:first-child,td:first-child{text-align:left}
.partial,.broken{background:#fdd;padding:.5em;border:1px solid #c00} img{max-width:100%}
.legend{line-height:2} .swatch{margin-right:1em;white-space:nowrap}
.swatch i{display:inline-block;width:1em;height:1em;margin-right:.3em;vertical-align:middle;border:1px solid #888}
figure{margin:1em 0} figcaption{color:#555;font-size:90%}"""
# Marks images that failed to load (a user sees a banner; a headless check reads data-broken-images).
CHECK_IMAGES = """<script>window.addEventListener('load',function(){var n=0;document.querySelectorAll('img')
.forEach(function(i){if(!i.complete||i.naturalWidth===0){n++;i.classList.add('broken');}});
document.body.dataset.brokenImages=n;document.body.dataset.images=document.images.length;if(n){var b=document
.createElement('p');b.className='broken';b.textContent=n+' image(s) failed to load';document.body.prepend(b);}});
</script>"""


def render_html(report: dict, mosaics: list[np.ndarray], sample_stamps: list[int] | None = None) -> str:
    e = html.escape
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>lix-bag eval</title><style>", STYLE,
             "</style>", CHECK_IMAGES, "</head><body><h1>lix-bag eval</h1>"]
    sources = [("bag", report["bag"]), ("mode", report["mode"]), ("student", report.get("student_checkpoint")),
               ("teacher", report.get("teacher_checkpoint") or report.get("teacher_not_run") or "–")]
    sources += [(f"topic: {'labels' if role == 'gt' else role}", topic)
                for role, topic in report.get("topics", {}).items()]
    parts.append("<table>" + "".join(f"<tr><th>{e(k)}</th><td style='text-align:left'>{e(str(v))}</td></tr>"
                                     for k, v in sources)
                 + "</table><ul>")
    for line in summary_lines(report):
        css = " class='partial'" if line.startswith(("PARTIAL", "NO TEACHER")) else ""
        parts.append(f"<li{css}>{e(line)}</li>")
    parts.append("</ul>")
    available = [(k, t) for k, t in SECTIONS if report.get(k)]
    if available:
        parts += ["<h2>Per-class IoU</h2>", _legend(report),
                  f"<figure><img alt='per-class IoU' src='{_class_bars_png(report, available)}'>"
                  "<figcaption>IoU per class; in brackets the class's pixels in the reference</figcaption></figure>",
                  "<table><tr><th>class</th>"]
        parts += [f"<th>{e(t)} (%)</th>" for _, t in available] + ["<th>reference pixels</th></tr>"]
        support = report[available[0][0]]["support"]
        for name in CLASS_NAMES:
            cells = [_fmt(report[k]["per_class_iou"].get(name)) for k, _ in available]
            if any(c != "–" for c in cells):
                parts.append(f"<tr><td>{e(name)}</td>" + "".join(f"<td>{c}</td>" for c in cells)
                             + f"<td>{support.get(name, 0):,}</td></tr>")
        parts.append("<tr><th>mIoU</th>" + "".join(f"<th>{_fmt(report[k]['miou'])}</th>" for k, _ in available)
                     + "<th></th></tr></table>")
    over_time = _over_time_png(report)
    if over_time:
        parts.append(f"<h2>Over the drive</h2><figure><img alt='per-frame mIoU and latency' src='{over_time}'>"
                     "</figure>")
    parts += _worst_frames(report)
    names = {"student": "Student vs ground truth", "teacher": "Teacher vs ground truth",
             "agreement": "Student vs teacher"}
    if report.get("confusion"):
        parts.append("<h2>Confusion matrices (row-normalised)</h2><div>")
        for key, matrix in report["confusion"].items():
            parts.append(f"<img alt='{e(names[key])}' src='{_confusion_png(matrix, names[key])}' "
                         "style='max-width:49%'>")
        parts.append("</div>")
    if mosaics:
        parts.append("<h2>Sample frames</h2>")
        stamps = sample_stamps or [None] * len(mosaics)
        parts += [f"<figure><img alt='frame {i}' src='{_png(m)}'><figcaption>"
                  f"{'stamp ' + _stamp(t) + ' s' if t is not None else f'sample {i}'}</figcaption></figure>"
                  for i, (m, t) in enumerate(zip(mosaics, stamps))]
    parts.append("<h2>Latency</h2><table><tr><th>model</th><th>kind</th><th>frames</th><th>median (ms)</th>"
                 "<th>p99 (ms)</th></tr>")
    for role in ("student", "teacher"):
        s = report["latency"][role]
        if s.get("count"):
            parts.append(f"<tr><td>{role}</td><td>{e(report['latency']['kind'])}</td><td>{s['count']}</td>"
                         f"<td>{s['median_ms']:.1f}</td><td>{s['p99_ms']:.1f}</td></tr>")
    parts.append("</table></body></html>")
    return "\n".join(parts)
