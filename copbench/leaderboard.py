"""``copbench leaderboard RESULTS_DIR --format md|csv|html``.

One row per results file (model), one column per metric: ``mean [lo, hi]``
(95% bootstrap CI). A model that failed on some clips (``--allow-failures``:
broken or missing outputs) is marked ``†`` with its counts in the ``n`` cell
(``3 (1 failed, 0 missing)``) and is never marked best. The best mean per column
(by the metric's direction, over complete models) is marked: bold with ``*`` in Markdown, a ``best`` column in CSV, highlighted in
HTML. Provenance: Markdown lists one line per model under the table; CSV has a
``provenance`` column; HTML rows expand (click) to the full provenance JSON.
The HTML page is one self-contained file: a sortable table (click a header;
inline script) and one inline SVG bar chart with CI whiskers per metric.
"""

from __future__ import annotations

import csv
import html
import io
import json
from pathlib import Path

from .results import provenance_line, read_results


def load_results(results_dir: str | Path) -> list[dict]:
    files = sorted(Path(results_dir).glob("*.json"))
    rows = [read_results(f) for f in files]
    return sorted(rows, key=lambda r: r["model"])


def _columns(rows: list[dict], only: list[str] | None = None) -> list[str]:
    cols = sorted({c for r in rows for c in r["metrics"]})
    return cols if not only else [c for c in only if c in cols]


def failures(r: dict) -> tuple[int, int]:
    """(failed, missing) clips of a results file; older files carry them only in
    ``errors`` and ``pairing``."""
    pairing = r.get("pairing") or {}
    return (int(r.get("n_failed", len(r.get("errors") or {}))),
            int(r.get("n_missing", len(pairing.get("missing") or []))))


def is_complete(r: dict) -> bool:
    return r.get("complete", True) is not False and failures(r) == (0, 0)


def _model_cell(r: dict) -> str:
    return r["model"] if is_complete(r) else f"{r['model']} †"


def _n_cell(r: dict) -> str:
    paired = (r.get("pairing") or {}).get("paired", "")
    if is_complete(r):
        return str(paired)
    failed, missing = failures(r)
    return f"{paired - failed if isinstance(paired, int) else paired} ({failed} failed, {missing} missing)"


INCOMPLETE_NOTE = ("`†` incomplete: the model failed on some clips (broken or missing outputs, "
                   "scored with --allow-failures); its means cover fewer clips and it is never "
                   "marked best.")


def best_models(rows: list[dict]) -> dict[str, set[str]]:
    """Column -> complete models holding the best mean (ties all marked); an
    incomplete model is never best."""
    out = {}
    for col in _columns(rows):
        vals = [(r["model"], r["metrics"][col]) for r in rows
                if col in r["metrics"] and is_complete(r)]
        if not vals:
            continue
        higher = vals[0][1].get("higher_is_better", True)
        target = (max if higher else min)(v["mean"] for _, v in vals)
        out[col] = {m for m, v in vals if v["mean"] == target}
    return out


def _cell(entry: dict | None) -> str:
    if entry is None:
        return "-"
    lo, hi = entry["ci95"]
    mark = " ⚑" if entry.get("flags") else ""
    return f"{entry['mean']:.4g} [{lo:.4g}, {hi:.4g}]{mark}"


def metric_notes(row: dict, only: list[str] | None = None) -> list[str]:
    """What a reader must know beside the numbers of one results file: flags,
    N for set-level metrics (clips and frames), and how many values were set
    by a convention rather than measured."""
    notes = []
    for col in _columns([row], only):
        e = row["metrics"][col]
        parts = []
        if e.get("flags"):
            parts.append("flags " + ",".join(e["flags"]))
        if e.get("n_clips"):
            nc, nf = e["n_clips"], e.get("n_frames", {})
            parts.append(f"N clips {nc.get('output')}/{nc.get('reference')} ref, "
                         f"frames {nf.get('output')}/{nf.get('reference')} ref")
        used = {k: v for k, v in (e.get("conventions") or {}).items() if v}
        if used:
            parts.append("conventions " + ", ".join(f"{k} {v}/{e.get('n')}" for k, v in sorted(used.items())))
        if parts:
            notes.append(f"{col}: " + "; ".join(parts))
    return notes


def to_markdown(rows: list[dict], only: list[str] | None = None) -> str:
    cols, best = _columns(rows, only), best_models(rows)
    arrows = {c: ("↑" if next(r["metrics"][c] for r in rows if c in r["metrics"])
                  .get("higher_is_better", True) else "↓") for c in cols}
    out = ["| model | n | " + " | ".join(f"{c} {arrows[c]}" for c in cols) + " |",
           "|---|---|" + "---|" * len(cols)]
    for r in rows:
        cells = []
        for c in cols:
            text = _cell(r["metrics"].get(c))
            cells.append(f"**{text}** *" if r["model"] in best.get(c, ()) else text)
        out.append(f"| {_model_cell(r)} | {_n_cell(r)} | " + " | ".join(cells) + " |")
    out += ["", "`*` best in column. Mean [95% CI]; `⚑` flagged (see notes)."]
    if not all(is_complete(r) for r in rows):
        out += ["", INCOMPLETE_NOTE]
    notes = [(r["model"], metric_notes(r, only)) for r in rows]
    if any(n for _, n in notes):
        out += ["", "Notes (flags, N, values set by conventions):", ""]
        out += [f"- {m}: {'; '.join(n)}" for m, n in notes if n]
    out += ["", "Provenance:", ""]
    out += [f"- {r['model']}: {provenance_line(r)}" for r in rows]
    return "\n".join(out) + "\n"


def to_csv(rows: list[dict], only: list[str] | None = None) -> str:
    cols, best = _columns(rows, only), best_models(rows)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    header = ["model", "n"]
    for c in cols:
        header += [c, f"{c}_ci_low", f"{c}_ci_high"]
    w.writerow(header + ["n_failed", "n_missing", "best", "notes", "provenance"])
    for r in rows:
        line = [r["model"], r.get("pairing", {}).get("paired", "")]
        for c in cols:
            e = r["metrics"].get(c)
            line += [e["mean"], e["ci95"][0], e["ci95"][1]] if e else ["", "", ""]
        marks = ";".join(c for c in cols if r["model"] in best.get(c, ()))
        w.writerow(line + [*failures(r), marks, " | ".join(metric_notes(r, only)),
                           provenance_line(r)])
    return buf.getvalue()


def _svg_chart(col: str, rows: list[dict], best: set[str]) -> str:
    vals = [(r["model"], r["metrics"][col]) for r in rows if col in r["metrics"]]
    lo = min(min(v["ci95"][0], v["mean"], 0.0) for _, v in vals)
    hi = max(max(v["ci95"][1], v["mean"], 0.0) for _, v in vals)
    span = (hi - lo) or 1.0
    bar_h, left, width = 22, 150, 360
    height = 30 + bar_h * len(vals)

    def x(v: float) -> float:
        return left + (v - lo) / span * width
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 90}" '
             f'height="{height}" role="img" aria-label="{html.escape(col)}">',
             f'<text x="4" y="16" font-size="13" font-weight="bold">{html.escape(col)}</text>',
             f'<line x1="{x(0):.1f}" y1="22" x2="{x(0):.1f}" y2="{height}" stroke="#999"/>']
    for i, (model, v) in enumerate(vals):
        y = 26 + i * bar_h
        x0, x1 = sorted((x(0), x(v["mean"])))
        color = "#d9822b" if model in best else "#4a7ab5"
        parts.append(f'<text x="4" y="{y + 14}" font-size="12">{html.escape(model[:22])}</text>')
        parts.append(f'<rect x="{x0:.1f}" y="{y + 3}" width="{max(x1 - x0, 1):.1f}" '
                     f'height="{bar_h - 8}" fill="{color}"/>')
        parts.append(f'<line x1="{x(v["ci95"][0]):.1f}" y1="{y + 8}" x2="{x(v["ci95"][1]):.1f}" '
                     f'y2="{y + 8}" stroke="#222" stroke-width="1.5"/>')
        parts.append(f'<text x="{left + width + 6}" y="{y + 14}" font-size="11">'
                     f'{v["mean"]:.4g}</text>')
    parts.append("</svg>")
    return "".join(parts)


_SCRIPT = """
document.querySelectorAll('th[data-col]').forEach(function (th) {
  th.addEventListener('click', function () {
    var table = th.closest('table'), body = table.tBodies[0], idx = th.cellIndex;
    var asc = th.getAttribute('data-asc') !== '1';
    th.setAttribute('data-asc', asc ? '1' : '0');
    var rows = Array.prototype.slice.call(body.querySelectorAll('tr.row'));
    rows.sort(function (a, b) {
      var x = a.cells[idx].getAttribute('data-v'), y = b.cells[idx].getAttribute('data-v');
      var nx = parseFloat(x), ny = parseFloat(y);
      var c = (isNaN(nx) || isNaN(ny)) ? String(x).localeCompare(String(y)) : nx - ny;
      return asc ? c : -c;
    });
    rows.forEach(function (r) { body.appendChild(r); body.appendChild(r.nextElementSibling); });
  });
});
document.querySelectorAll('tr.row').forEach(function (r) {
  r.addEventListener('click', function () { r.nextElementSibling.classList.toggle('open'); });
});
"""

_STYLE = """body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse}
td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}th{cursor:pointer;background:#eee}
td:first-child{text-align:left}.best{background:#ffe2b8;font-weight:bold}
tr.prov{display:none}tr.prov.open{display:table-row}tr.row{cursor:pointer}
pre{text-align:left;white-space:pre-wrap;font-size:11px;margin:0}.charts svg{margin:8px}"""


def to_html(rows: list[dict], only: list[str] | None = None) -> str:
    cols, best = _columns(rows, only), best_models(rows)
    esc = html.escape
    head = ['<th data-col="model">model</th>', '<th data-col="n">n</th>']
    for c in cols:
        first = next(r["metrics"][c] for r in rows if c in r["metrics"])
        arrow = "↑" if first.get("higher_is_better", True) else "↓"
        head.append(f'<th data-col="{esc(c)}">{esc(c)} {arrow}</th>')
    body = []
    for r in rows:
        cells = [f'<td data-v="{esc(r["model"])}">{esc(_model_cell(r))}</td>',
                 f'<td data-v="{r.get("pairing", {}).get("paired", 0)}">{esc(_n_cell(r))}</td>']
        for c in cols:
            e = r["metrics"].get(c)
            cls = ' class="best"' if r["model"] in best.get(c, ()) else ""
            v = e["mean"] if e else ""
            cells.append(f'<td{cls} data-v="{v}">{esc(_cell(e))}</td>')
        body.append('<tr class="row" title="click for provenance">' + "".join(cells) + "</tr>")
        prov = json.dumps({"notes": metric_notes(r, only), "provenance": r.get("provenance"),
                           "pairing": r.get("pairing"), "created": r.get("created")},
                          indent=1, sort_keys=True)
        body.append(f'<tr class="prov"><td colspan="{len(cols) + 2}"><pre>{esc(prov)}</pre></td></tr>')
    charts = "".join(_svg_chart(c, rows, best.get(c, set())) for c in cols)
    return ("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>copbench leaderboard"
            f"</title><style>{_STYLE}</style></head><body><h1>copbench leaderboard</h1>"
            "<p>Mean [95% CI]; ⚑ flagged; highlighted = best in column; click a header to sort, "
            "a row for its notes (flags, N, conventions) and provenance.</p>"
            + ("" if all(is_complete(r) for r in rows) else f"<p>{esc(INCOMPLETE_NOTE)}</p>")
            + f"<table><thead><tr>{''.join(head)}</tr></thead><tbody>{''.join(body)}</tbody></table>"
            f"<h2>Per-metric plots</h2><div class=\"charts\">{charts}</div>"
            f"<script>{_SCRIPT}</script></body></html>\n")


def render_leaderboard(results_dir: str | Path, fmt: str = "md",
                       metrics: list[str] | None = None) -> str:
    """The leaderboard of every results file in ``results_dir``; ``metrics``
    picks and orders the columns (default: all, sorted)."""
    rows = load_results(results_dir)
    if not rows:
        from .errors import BenchError
        raise BenchError("no results files (*.json) found; run `copbench run` first",
                         item=str(results_dir))
    return {"md": to_markdown, "csv": to_csv, "html": to_html}[fmt](rows, metrics)
