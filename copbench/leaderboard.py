"""``copbench leaderboard RESULTS_DIR --format md|csv|html [--samples N]``.

Rendered from the :func:`copbench.frame.load_results` DataFrame: one row per
model, one column per metric, ``mean [lo, hi]`` (95% CI). The best mean per
column (by the metric's direction, over complete models) is marked: bold with
``*`` in Markdown, a ``best`` column in CSV, highlighted in HTML. A metric
entry's flags show as ``⚑`` and its convention counts as ``c=K``; the notes
under the table spell them out, with N of each side for set-level metrics.
A model with failed or missing clips is marked ``†`` with its counts in the
``n`` cell (``3 (1 failed, 0 missing)``) and is never marked best. Provenance: Markdown
lists one line per model under the table; CSV has a ``provenance`` column;
HTML rows expand (click) to the full provenance JSON.

The HTML page groups the metrics in tables (listening test, quality,
alignment, MIDI, other) so each fits a laptop screen, has a sortable table
(click a header; inline script), one inline SVG bar chart with CI whiskers
per metric, and with ``--samples N`` a sample browser (:mod:`copbench.samples`).
"""

from __future__ import annotations

import csv
import html
import io
import json
from pathlib import Path

import pandas as pd

from copdata.escape import csv_cell, md_text

from .frame import GROUPS, best_models, read_results_dir, results_frame

GROUP_TITLES = {"listening": "Listening test (MOS, ACR 1-5)", "quality": "Audio quality",
                "alignment": "Audio-video alignment", "midi": "MIDI (transcribed output vs reference)",
                "other": "Other"}


def _columns(frame: pd.DataFrame, only: list[str] | None = None) -> list[str]:
    cols = sorted(frame["metric"].unique())
    return cols if not only else [c for c in only if c in cols]


def _models(frame: pd.DataFrame) -> list[str]:
    return sorted(frame["model"].unique())


def _entries(frame: pd.DataFrame) -> dict[tuple[str, str], pd.Series]:
    return {(r.model, r.metric): r for r in frame.itertuples(index=False)}


INCOMPLETE_NOTE = ("`†` incomplete: the model failed on some clips or has no output for them; "
                   "its means cover fewer clips and it is never marked best.")


def _model_info(frame: pd.DataFrame) -> dict[str, dict]:
    first = frame.drop_duplicates("model").set_index("model")
    out = {}
    for m in first.index:
        paired, failed, missing = (int(first.loc[m, k]) for k in ("n_paired", "n_failed", "n_missing"))
        complete = bool(first.loc[m, "complete"])
        n_text = str(paired) if complete else f"{paired - failed} ({failed} failed, {missing} missing)"
        out[m] = {"n": paired, "n_text": n_text, "failed": failed, "missing": missing,
                  "incomplete": not complete, "provenance": first.loc[m, "provenance"],
                  "path": first.loc[m, "path"]}
    return out


def _direction(frame: pd.DataFrame, metric: str) -> str:
    return "↑" if bool(frame.loc[frame["metric"] == metric, "higher_is_better"].iloc[0]) else "↓"


def _cell(entry) -> str:
    if entry is None or pd.isna(entry.mean):
        return "-"
    text = f"{entry.mean:.4g}"
    if entry.ci_low is not None and not pd.isna(entry.ci_low):
        text += f" [{entry.ci_low:.4g}, {entry.ci_high:.4g}]"
    return text


def _marks(entry) -> str:
    if entry is None:
        return ""
    out = " ⚑" if entry.flags else ""
    return out + (f" c={entry.n_conventions}" if entry.n_conventions else "")


def _model_label(model: str, info: dict) -> str:
    return f"{model} †" if info[model]["incomplete"] else model


def _notes(frame: pd.DataFrame, cols: list[str]) -> list[tuple[str, str]]:
    """``(model, "metric: flags ...; N clips ...; conventions ...")`` per entry that
    needs a word beside its numbers."""
    notes = []
    for r in frame[frame["metric"].isin(cols)].itertuples(index=False):
        parts = []
        if r.flags:
            parts.append("flags " + ", ".join(r.flags))
        n_clips, n_frames = r.extra.get("n_clips"), r.extra.get("n_frames") or {}
        if isinstance(n_clips, dict):  # set-level metrics (FAD): N of each side
            parts.append(f"N clips {n_clips.get('output')}/{n_clips.get('reference')} ref"
                         + (f", frames {n_frames.get('output')}/{n_frames.get('reference')} ref"
                            if isinstance(n_frames, dict) and n_frames else ""))
        used = {k: v for k, v in r.conventions.items() if v}
        if used:
            parts.append("conventions " + ", ".join(f"{k} {v}/{r.n}" for k, v in sorted(used.items())))
        if parts:
            notes.append((r.model, f"{r.metric}: " + "; ".join(parts)))
    return notes


def _md(text) -> str:
    """Text from results files (model and metric names, notes, provenance) as
    literal Markdown: no HTML, no extra columns, no links."""
    return md_text(text)


def _csv_row(cells: list) -> list:
    """Cells of one CSV row with text that a spreadsheet would run defused."""
    return [csv_cell(c) for c in cells]


def to_markdown(frame: pd.DataFrame, only: list[str] | None = None) -> str:
    cols, best, entries, info = _columns(frame, only), best_models(frame), _entries(frame), _model_info(frame)
    out = ["| model | n | " + " | ".join(f"{_md(c)} {_direction(frame, c)}" for c in cols) + " |",
           "|---|---|" + "---|" * len(cols)]
    for model in _models(frame):
        cells = []
        for c in cols:
            entry = entries.get((model, c))
            text = _cell(entry)
            text = f"**{text}** *" if model in best.get(c, ()) else text
            cells.append(text + _marks(entry))
        out.append(f"| {_md(_model_label(model, info))} | {_md(info[model]['n_text'])} | "
                   + " | ".join(cells) + " |")
    out += ["", "`*` best in column. Mean [95% CI]. ⚑ flags, c=K values set by a convention "
            "rather than measured (see the notes)."]
    if any(i["incomplete"] for i in info.values()):
        out += ["", INCOMPLETE_NOTE]
    notes = _notes(frame, cols)
    if notes:
        out += ["", "Notes (flags, N, values set by conventions):", ""]
        out += [f"- {_md(model)} / {_md(text)}" for model, text in notes]
    out += ["", "Provenance:", ""]
    out += [f"- {_md(m)}: {_md(info[m]['provenance'])}" for m in _models(frame)]
    return "\n".join(out) + "\n"


def to_csv(frame: pd.DataFrame, only: list[str] | None = None) -> str:
    cols, best, entries, info = _columns(frame, only), best_models(frame), _entries(frame), _model_info(frame)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    header = ["model", "n"]
    for c in cols:
        header += [c, f"{c}_ci_low", f"{c}_ci_high"]
    w.writerow(_csv_row(header + ["n_failed", "n_missing", "best", "flags", "conventions",
                                  "notes", "provenance"]))
    notes = _notes(frame, cols)
    for model in _models(frame):
        line, flags, conventions = [model, info[model]["n"]], [], []
        for c in cols:
            e = entries.get((model, c))
            line += [e.mean, e.ci_low, e.ci_high] if e is not None else ["", "", ""]
            if e is not None and e.flags:
                flags.append(f"{c}:{'|'.join(e.flags)}")
            if e is not None and e.n_conventions:
                conventions.append(f"{c}:{e.n_conventions}")
        marks = ";".join(c for c in cols if model in best.get(c, ()))
        w.writerow(_csv_row(line + [info[model]["failed"], info[model]["missing"], marks,
                                    ";".join(flags), ";".join(conventions),
                                    " | ".join(t for m, t in notes if m == model),
                                    info[model]["provenance"]]))
    return buf.getvalue()


def _svg_chart(metric: str, frame: pd.DataFrame, best: set[str]) -> str:
    rows = frame[frame["metric"] == metric].dropna(subset=["mean"]).sort_values("model")
    vals = [(r.model, r.mean, r.ci_low if not pd.isna(r.ci_low) else r.mean,
             r.ci_high if not pd.isna(r.ci_high) else r.mean) for r in rows.itertuples(index=False)]
    if not vals:
        return ""
    lo = min(min(v[2], v[1], 0.0) for v in vals)
    hi = max(max(v[3], v[1], 0.0) for v in vals)
    span = (hi - lo) or 1.0
    bar_h, left, width = 22, 150, 300
    height = 30 + bar_h * len(vals)

    def x(v: float) -> float:
        return left + (v - lo) / span * width
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 70}" '
             f'height="{height}" role="img" aria-label="{html.escape(metric)}">',
             f'<text x="4" y="16" font-size="13" font-weight="bold">{html.escape(metric)}</text>',
             f'<line x1="{x(0):.1f}" y1="22" x2="{x(0):.1f}" y2="{height}" stroke="#999"/>']
    for i, (model, mean, ci_lo, ci_hi) in enumerate(vals):
        y = 26 + i * bar_h
        x0, x1 = sorted((x(0), x(mean)))
        color = "#d9822b" if model in best else "#4a7ab5"
        parts.append(f'<text x="4" y="{y + 14}" font-size="12">{html.escape(model[:22])}</text>')
        parts.append(f'<rect x="{x0:.1f}" y="{y + 3}" width="{max(x1 - x0, 1):.1f}" '
                     f'height="{bar_h - 8}" fill="{color}"/>')
        parts.append(f'<line x1="{x(ci_lo):.1f}" y1="{y + 8}" x2="{x(ci_hi):.1f}" '
                     f'y2="{y + 8}" stroke="#222" stroke-width="1.5"/>')
        parts.append(f'<text x="{left + width + 6}" y="{y + 14}" font-size="11">{mean:.4g}</text>')
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

_STYLE = """body{font-family:system-ui,sans-serif;margin:1.2em;color:#1d232b}
table{border-collapse:collapse;margin-bottom:.6em;font-size:14px}
td,th{border:1px solid #ccc;padding:3px 7px;text-align:right;white-space:nowrap}
th{cursor:pointer;background:#eee;white-space:normal;max-width:7.5em;font-size:13px}
td:first-child{text-align:left}td small{color:#555;font-weight:normal}
.best{background:#ffe2b8;font-weight:bold}.flag{color:#b00020}
tr.prov{display:none}tr.prov.open{display:table-row}tr.row{cursor:pointer}
pre{text-align:left;white-space:pre-wrap;font-size:11px;margin:0}.charts svg{margin:6px}
h2{font-size:1.15em;margin:.8em 0 .3em}.groups{display:flex;flex-wrap:wrap;gap:0 28px;align-items:flex-start}.notes{font-size:13px;color:#444}"""


def _short(metric: str, group: str) -> str:
    """A column header without its group's prefix (``midi_note_f1`` -> ``note f1``)."""
    for prefix in ("midi_", "mos_"):
        if group in ("midi", "listening") and metric.startswith(prefix):
            metric = metric[len(prefix):]
    return metric.replace("_", " ")


def _html_cell(entry) -> str:
    if entry is None or pd.isna(entry.mean):
        return "-"
    text = html.escape(f"{entry.mean:.4g}")
    if entry.ci_low is not None and not pd.isna(entry.ci_low):
        text += f'<br><small>[{entry.ci_low:.3g}, {entry.ci_high:.3g}]</small>'
    return text


def _table(frame: pd.DataFrame, cols: list[str], best: dict, entries: dict, info: dict,
           group: str = "") -> str:
    esc = html.escape
    head = ['<th data-col="model">model</th>', '<th data-col="n">n</th>']
    head += [f'<th data-col="{esc(c)}" title="{esc(c)}">{esc(_short(c, group))} '
             f'{_direction(frame, c)}</th>' for c in cols]
    body, notes = [], _notes(frame, cols)
    for model in _models(frame):
        cells = [f'<td data-v="{esc(model)}">{esc(_model_label(model, info))}</td>',
                 f'<td data-v="{info[model]["n"]}">{esc(info[model]["n_text"])}</td>']
        for c in cols:
            e = entries.get((model, c))
            cls = ' class="best"' if model in best.get(c, ()) else ""
            v = "" if e is None or pd.isna(e.mean) else e.mean
            marks = _marks(e)
            mark_html = f' <span class="flag">{esc(marks.strip())}</span>' if marks else ""
            cells.append(f'<td{cls} data-v="{v}">{_html_cell(e)}{mark_html}</td>')
        body.append('<tr class="row" title="click for notes and provenance">' + "".join(cells) + "</tr>")
        prov = {"notes": [t for m, t in notes if m == model],
                "provenance_line": info[model]["provenance"], "file": info[model]["path"]}
        body.append(f'<tr class="prov"><td colspan="{len(cols) + 2}"><pre>'
                    f'{esc(json.dumps(prov, indent=1))}</pre></td></tr>')
    return (f"<table><thead><tr>{''.join(head)}</tr></thead><tbody>{''.join(body)}</tbody>"
            "</table>")


def to_html(frame: pd.DataFrame, only: list[str] | None = None, samples_html: str = "") -> str:
    cols, best, entries, info = _columns(frame, only), best_models(frame), _entries(frame), _model_info(frame)
    groups = frame.drop_duplicates("metric").set_index("metric")["group"].to_dict()
    sections = []
    for group in GROUPS:
        in_group = [c for c in cols if groups.get(c) == group]
        if not in_group:
            continue
        charts = "".join(_svg_chart(c, frame, best.get(c, set())) for c in in_group)
        sections.append(f'<div class="group"><h2>{html.escape(GROUP_TITLES[group])}</h2>'
                        + _table(frame, in_group, best, entries, info, group)
                        + f'<details class="charts"><summary>plots</summary>{charts}</details>'
                        "</div>")
    notes = "".join(f"<li>{html.escape(f'{m} / {t}')}</li>" for m, t in _notes(frame, cols))
    if any(i["incomplete"] for i in info.values()):
        notes += f"<li>{html.escape(INCOMPLETE_NOTE)}</li>"
    return ("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>copbench leaderboard"
            f"</title><style>{_STYLE}</style></head><body><h1>copbench leaderboard</h1>"
            "<p>Mean [95% CI]; highlighted = best in column; ⚑ flags, c=K conventions, "
            "† missing or failed clips; click a header to sort, a row for its notes and provenance.</p>"
            + '<div class="groups">' + "".join(sections) + "</div>"
            + (f'<ul class="notes">{notes}</ul>' if notes else "")
            + samples_html
            + f"<script>{_SCRIPT}</script></body></html>\n")


def render_leaderboard(results_dir: str | Path, fmt: str = "md",
                       metrics: list[str] | None = None, samples: int = 0,
                       out: str | Path | None = None, seed: int = 0) -> str:
    """The leaderboard of every results file in ``results_dir``; ``metrics``
    picks and orders the columns (default: all, sorted). ``samples`` > 0 (HTML
    only, needs ``out``) adds a sample browser whose media go beside ``out``."""
    results = read_results_dir(results_dir)
    frame = results_frame(results)
    if fmt == "html":
        samples_html = ""
        if samples:
            from .samples import sample_browser
            if out is None:
                from .errors import BenchError
                raise BenchError("--samples writes media files beside the page: give --out",
                                 item=str(results_dir))
            samples_html = sample_browser(results, Path(out), samples, seed=seed)
        return to_html(frame, metrics, samples_html)
    return {"md": to_markdown, "csv": to_csv}[fmt](frame, metrics)
