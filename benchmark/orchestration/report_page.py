"""The leaderboard as one static web page (``report.html``): what a person opens to compare methods.

:func:`write_report_page` reads a results folder as :func:`~unlearnbench.orchestration.leaderboard.write_leaderboard`
leaves it (``leaderboard.json``, ``runs.csv``, ``leaderboard_pairs.csv``, ``protocol.txt``, ``leaderboard.png``,
``grids/``) and writes one self-contained HTML file beside it: styles, script and images inline (PNG as data URIs),
no network and no CDN, so it opens from the file system and can be mailed as one file. It shows

- the three main tables (forgetting, attacks, retained quality and cost), built by the same code as the Markdown
  tables (:func:`~unlearnbench.orchestration.leaderboard.main_table_data`), sortable by any column (click its
  header; numbers sort by their mean, missing values last); every metric cell carries its per-forget-class values
  (hover), and a click on a row opens that method's runs: their scores per forget class and seed and their sample
  grids;
- the 95 % intervals and the pre-declared paired comparisons (confirmatory under Holm, exploratory);
- the leaderboard figure, the protocol, the hardware, the code fingerprints and library versions of the runs;
- with ``reference_dir``, "yours vs reference": the reference's provenance in plain words
  (:func:`~unlearnbench.orchestration.reference.reference_status`), the key scores side by side with the ones
  outside :data:`~unlearnbench.orchestration.reference.TOLERANCE` highlighted, and the reference's main tables.

The page is a pure function of those files: ``unlearnbench report`` rebuilds it at any time. A study gets a page of
its own from the same pieces (:func:`write_study_page`): its summary table, figures, report and a link to each
point's page.
"""

from __future__ import annotations

import base64
import html
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from unlearnbench.foundation.cache import write_text_atomic
from unlearnbench.foundation.provenance import checkout_path
from unlearnbench.orchestration.leaderboard import (
    INTERVALS_TITLE,
    MISSING,
    PAIRS_TITLE,
    READING_GUIDE,
    TableData,
    interval_table,
    main_table_data,
    pair_tables,
    value_text,
)
from unlearnbench.orchestration.reference import reference_status, scores_close

PAGE = "report.html"
COMPARED = [  # (column, header) of "yours vs reference": the confirmatory metrics and the time
    ("recognised_rate", "recognised ↓"),
    ("relearn_max", "relearned max ↓"),
    ("retain_accuracy", "retained acc ↑"),
    ("mmd", "MMD ↓"),
    ("total_seconds", "unlearning time (s)"),
]
NOT_COMPARED = {"total_seconds"}  # shown side by side, never flagged: times differ between machines and days
RUN_COLUMNS = [  # (column, header) of a method's runs, opened by a click on its row
    ("recognised_rate", "recognised"), ("unrecognisable_rate", "unrecognisable"), ("retain_accuracy", "retained acc"),
    ("mmd", "MMD"), ("relearn_max", "relearned max"), ("inversion_recognised", "inversion"),
    ("null_recognised", "leakage"), ("total_seconds", "time (s)"),
]


@dataclass
class ResultsFolder:
    """A results folder's files as the page needs them."""

    directory: Path
    table: pd.DataFrame
    runs: pd.DataFrame
    pairs: pd.DataFrame = field(default_factory=pd.DataFrame)
    protocol: str = ""

    @classmethod
    def read(cls, directory: str | Path) -> ResultsFolder:
        directory = Path(directory)
        board = directory / "leaderboard.json"
        if not board.is_file():
            raise FileNotFoundError(f"{board} does not exist: run the profile (or `unlearnbench leaderboard`) first")
        table = pd.DataFrame(json.loads(board.read_text()))
        runs = pd.read_csv(directory / "runs.csv") if (directory / "runs.csv").is_file() else pd.DataFrame()
        pairs_path = directory / "leaderboard_pairs.csv"
        pairs = pd.read_csv(pairs_path) if pairs_path.is_file() and pairs_path.stat().st_size > 1 else pd.DataFrame()
        protocol = (directory / "protocol.txt").read_text().strip() if (directory / "protocol.txt").is_file() else ""
        return cls(directory, table, runs, pairs, protocol)

    def distinct(self, col: str) -> list[str]:
        return sorted({str(v) for v in self.runs[col].dropna()}) if col in self.runs else []


# -- pieces ---------------------------------------------------------------------------------------------------
def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _sort_attr(value: float | str) -> str:
    if isinstance(value, str):
        return _e(value)
    return "" if value is None or math.isnan(value) else repr(float(value))


def per_class_text(runs: pd.DataFrame, method: str, col: str) -> str:
    """"forget class 0: v · 1: v …" for one method and metric (means over seeds), "" when the runs lack it."""
    if col not in runs or "forget_class" not in runs:
        return ""
    mine = runs[(runs["method"] == method) & (runs["status"] == "ok")]
    values = pd.to_numeric(mine[col], errors="coerce").groupby(mine["forget_class"]).mean().dropna()
    if values.empty:
        return ""
    return "forget class " + " · ".join(f"{c}: {value_text(v, col)}" for c, v in values.items())


def table_html(data: TableData, table_id: str, runs: pd.DataFrame | None = None, clickable: bool = False) -> str:
    """A sortable HTML table of ``data``; metric cells carry their per-forget-class values (``title``) when
    ``runs`` is given; with ``clickable`` a row opens its method's runs."""
    head = "".join(f'<th data-col="{_e(c or h)}" title="sort by {_e(h)}">{_e(h)}</th>'
                   for h, c in zip(data.headers, data.columns, strict=True))
    body = []
    for row, keys in zip(data.rows, data.sort_values, strict=True):
        cells = []
        for text, key, col in zip(row, keys, data.columns, strict=True):
            hint = per_class_text(runs, row[0], col) if runs is not None and col else ""
            title = f' title="{_e(hint)}"' if hint else ""
            cells.append(f'<td data-sort="{_sort_attr(key)}"{title}>{_e(text)}</td>')
        attrs = f' class="run-row" data-method="{_e(row[0])}"' if clickable else ""
        body.append(f"<tr{attrs}>{''.join(cells)}</tr>")
    parts = [f'<p class="note">{_e(data.above)}</p>' if data.above else "",
             f'<table class="sortable" id="{_e(table_id)}"><thead><tr>{head}</tr></thead>'
             f'<tbody>{"".join(body)}</tbody></table>',
             f'<p class="note">{_e(data.below)}</p>' if data.below else ""]
    return "".join(parts)


def runs_template(folder: ResultsFolder, method: str) -> str:
    """The hidden block a click on ``method``'s row shows: its runs' scores and sample grids."""
    if not {"method", "forget_class", "seed"} <= set(folder.runs.columns):
        return f'<template id="runs-{_e(method)}"><p>no runs.csv beside the leaderboard</p></template>'
    runs = folder.runs[folder.runs["method"] == method]
    columns = [(c, h) for c, h in RUN_COLUMNS if c in runs]
    rows, grids = [], []
    for r in runs.sort_values(["forget_class", "seed"]).to_dict("records"):
        label = f"forget class {r['forget_class']}, seed {r['seed']}"
        status = "" if r.get("status") == "ok" else f" ({r.get('status')})"
        cells = "".join(f"<td>{_e(value_text(pd.to_numeric(r.get(c), errors='coerce'), c))}</td>"
                        for c, _ in columns)
        rows.append(f"<tr><td>{_e(label + status)}</td>{cells}</tr>")
        grid = folder.directory / str(r.get("grid_path") or "")
        if r.get("grid_path") and grid.is_file():
            grids.append(f'<figure><img class="grid" alt="samples of {_e(method)}, {_e(label)}" '
                         f'src="{_data_uri(grid)}"><figcaption>{_e(label)}</figcaption></figure>')
    header = "".join(f"<th>{_e(h)}</th>" for _, h in columns)
    return (f'<template id="runs-{_e(method)}"><h3>{_e(method)}: its runs</h3>'
            f'<table class="runs"><thead><tr><th>run</th>{header}</tr></thead><tbody>{"".join(rows)}</tbody></table>'
            f'<div class="grids">{"".join(grids) or "<p>no sample grids recorded</p>"}</div></template>')


def _mean(table: pd.DataFrame, method: str, col: str) -> float:
    return float(table.at[method, f"{col}_mean"]) if f"{col}_mean" in table else math.nan


def comparison_html(yours: ResultsFolder, reference: ResultsFolder) -> str:
    """Yours vs reference for the methods both have: "yours / reference", a cell outside the verify tolerance
    highlighted (times are shown, never flagged)."""
    mine = yours.table.set_index("method")
    theirs = reference.table.set_index("method")
    methods = [m for m in mine.index if m in theirs.index]
    if not methods:
        return "<p>No method in common with the reference.</p>"
    head = "".join(f"<th>{_e(h)}</th>" for _, h in COMPARED)
    rows, flagged = [], 0
    for m in methods:
        cells = []
        for col, _ in COMPARED:
            a, b = _mean(mine, m, col), _mean(theirs, m, col)
            differs = (col not in NOT_COMPARED and not (math.isnan(a) and math.isnan(b))
                       and not scores_close(col, b, a, exact=False))
            flagged += differs
            text = f"{value_text(a, col)} / {value_text(b, col)}"
            cells.append(f'<td class="{"differs" if differs else "same"}">{_e(text)}</td>')
        rows.append(f"<tr><td>{_e(m)}</td>{''.join(cells)}</tr>")
    note = (f"{flagged} score(s) differ beyond the verify tolerance (rates by more than 5 points, other scores by "
            "more than 5 %), highlighted." if flagged else
            "Every compared score is within the verify tolerance (rates within 5 points, others within 5 %).")
    return (f'<p class="note">Each cell: yours / reference (means over runs). {_e(note)}</p>'
            f'<table class="sortable" id="yours-vs-reference"><thead><tr><th>method</th>{head}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table>')


def provenance_html(folder: ResultsFolder) -> str:
    """Hardware, code fingerprints, library versions and dates of a folder's runs, in plain words."""
    versions = sorted(c for c in folder.runs.columns if c.startswith("version_"))
    items = [("measured on", ", ".join(folder.distinct("hardware")) or MISSING),
             ("code", ", ".join(folder.distinct("code_fingerprint")) or MISSING),
             ("protocol version", ", ".join(folder.distinct("protocol_version")) or MISSING),
             ("libraries", "; ".join(f"{c.removeprefix('version_')} {', '.join(folder.distinct(c))}" for c in versions)
              or MISSING),
             ("runs finished", _span(folder.distinct("finished_at")))]
    return "<dl>" + "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in items) + "</dl>"


def _span(times: list[str]) -> str:
    return MISSING if not times else times[0] if len(times) == 1 else f"{times[0]} to {times[-1]}"


def _document(title: str, body: str) -> str:
    """The page shell shared by every page: title, inline style, heading, ``body``, inline script."""
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>unlearnbench: {_e(title)}</title>'
            f"<style>{STYLE}</style></head><body><h1>unlearnbench: {_e(title)}</h1>{body}"
            f"<script>{SCRIPT}</script></body></html>\n")


def _section(anchor: str, title: str, body: str) -> str:
    return f'<section id="{anchor}"><h2>{_e(title)}</h2>{body}</section>'


def page_html(yours: ResultsFolder, reference: ResultsFolder | None = None, reference_line: str = "",
              title: str = "") -> str:
    """The whole page (see the module docstring)."""
    profile = title or (str(yours.runs["profile"].iloc[0]) if "profile" in yours.runs and len(yours.runs)
                        else yours.directory.name)
    tables = main_table_data(yours.table)
    main = "".join(f"<h3>{_e(t.title)}</h3>" + table_html(t, f"main-{i}", yours.runs, clickable=True)
                   for i, t in enumerate(tables))
    templates = "".join(runs_template(yours, m) for m in yours.table["method"])
    intro, pairs = pair_tables(yours.pairs) if len(yours.pairs) else ("", [])
    comparisons = (f'<p class="note">{_e(intro)}</p>' + "".join(
        f"<h3>{_e(t.title)}</h3>" + (table_html(t, f"pairs-{i}") if t.rows else "<p>none.</p>")
        for i, t in enumerate(pairs))) if pairs else "<p>Fewer than two methods besides the original: no pairs.</p>"
    figure = yours.directory / "leaderboard.png"
    sections = [
        _section("tables", "Leaderboard", '<p class="note">Click a column header to sort; hover a cell for its '
                 "value per forget class; click a row to see that method's runs and samples.</p>" + main
                 + '<div id="run-view"></div>' + templates),
        _section("intervals", INTERVALS_TITLE, table_html(interval_table(yours.table), "intervals")),
        _section("comparisons", PAIRS_TITLE, comparisons),
    ]
    if figure.is_file():
        sections.append(_section("figure", "Figure", f'<img class="figure" alt="leaderboard figure" '
                                                     f'src="{_data_uri(figure)}">'))
    if reference is not None:
        ref_tables = "".join(f"<h3>{_e(t.title)} (reference)</h3>" + table_html(t, f"ref-{i}", reference.runs)
                             for i, t in enumerate(main_table_data(reference.table)))
        sections.append(_section("reference", "Yours vs reference",
                                 f'<p class="provenance">{_e(reference_line)}</p>'
                                 + comparison_html(yours, reference) + ref_tables
                                 + "<h3>Reference runs</h3>" + provenance_html(reference)))
    sections.append(_section("protocol", "Protocol and provenance",
                             f"<pre>{_e(yours.protocol or 'not recorded')}</pre>" + provenance_html(yours)))
    sections.append(_section("guide", "How to read the scores",
                             f"<details><summary>show</summary><pre>{_e(READING_GUIDE)}</pre></details>"))
    nav = " · ".join(f'<a href="#{a}">{_e(t)}</a>' for a, t in [
        ("tables", "leaderboard"), ("intervals", "intervals"), ("comparisons", "comparisons"),
        *([("figure", "figure")] if figure.is_file() else []),
        *([("reference", "yours vs reference")] if reference is not None else []),
        ("protocol", "protocol"), ("guide", "reading guide")])
    return _document(profile, f"<nav>{nav}</nav>" + "".join(sections))


def write_report_page(directory: str | Path, reference_dir: str | Path | None = None, title: str = "") -> Path:
    """Write ``<directory>/report.html`` (atomically) from the results there and, when ``reference_dir`` holds a
    leaderboard, the reference beside them; returns its path."""
    directory = Path(directory)
    yours = ResultsFolder.read(directory)
    reference, line = None, ""
    if reference_dir is not None and (Path(reference_dir) / "leaderboard.json").is_file() \
            and Path(reference_dir).resolve() != directory.resolve():
        reference = ResultsFolder.read(reference_dir)
        line = f"Reference: {checkout_path(reference_dir)}. " + reference_status(reference_dir) + "."
    path = directory / PAGE
    write_text_atomic(path, page_html(yours, reference, line, title))
    return path


def write_study_page(directory: str | Path, title: str, summary: TableData, provenance: str, report: str,
                     size_pages: dict[str, str]) -> Path:
    """A study's page, ``<directory>/report.html``: its summary table (sortable), its own report (the decision
    rules' Markdown, as text), every figure in the folder, and a link to each point's own page (``size_pages``:
    label → path relative to the folder)."""
    directory = Path(directory)
    figures = "".join(f'<figure><img class="figure" alt="{_e(p.stem)}" src="{_data_uri(p)}">'
                      f"<figcaption>{_e(p.name)}</figcaption></figure>" for p in sorted(directory.glob("*.png")))
    links = " · ".join(f'<a href="{_e(link)}">{_e(label)}</a>' for label, link in size_pages.items())
    sections = [_section("tables", summary.title, f'<p class="note">{_e(provenance)} Click a column header to '
                         "sort.</p>" + table_html(summary, "summary")),
                *([_section("points", "Each point's leaderboard page", f"<p>{links}</p>")] if links else []),
                *([_section("figure", "Figures", figures)] if figures else []),
                *([_section("report", "The study's report", f"<pre>{_e(report)}</pre>")] if report else [])]
    path = directory / PAGE
    write_text_atomic(path, _document(title, "".join(sections)))
    return path


STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5em;max-width:110em;color:#222}
nav{margin-bottom:1em}nav a{color:#0645ad}
table{border-collapse:collapse;margin:.5em 0 1em;font-size:.9em}
th,td{border:1px solid #ccc;padding:.25em .5em;text-align:left;vertical-align:top}
th{background:#f2f2f2;cursor:pointer;user-select:none}
th.asc::after{content:" ▲"}th.desc::after{content:" ▼"}
tr.run-row{cursor:pointer}tr.run-row:hover{background:#eef4ff}tr.selected{background:#dde8ff}
td.differs{background:#ffe0b3;font-weight:bold}
.note{color:#555;max-width:100em;white-space:pre-line}.provenance{font-weight:bold}
pre{white-space:pre-wrap;background:#f8f8f8;padding:.5em;max-width:100em}
.grids{display:flex;flex-wrap:wrap;gap:1em}.grids img.grid{width:26em;max-width:100%}
img.figure{max-width:100%}dt{font-weight:bold}dd{margin:0 0 .4em 1em}
#run-view{border-left:4px solid #88a;padding-left:1em;margin:1em 0}
"""

SCRIPT = """
function sortTable(th){
  const table=th.closest('table'),idx=[...th.parentNode.children].indexOf(th),body=table.tBodies[0];
  const asc=!th.classList.contains('asc');
  table.querySelectorAll('th').forEach(h=>h.classList.remove('asc','desc'));
  th.classList.add(asc?'asc':'desc');
  const key=r=>{const c=r.children[idx];return c?(c.dataset.sort??c.textContent):'';};
  const rows=[...body.rows];
  const numeric=rows.every(r=>key(r)===''||!isNaN(parseFloat(key(r))));
  rows.sort((a,b)=>{
    const x=key(a),y=key(b);
    if(x===''||y==='')return (x==='')-(y==='');
    const d=numeric?parseFloat(x)-parseFloat(y):x.localeCompare(y);
    return asc?d:-d;});
  rows.forEach(r=>body.appendChild(r));
}
function showRuns(row){
  const t=document.getElementById('runs-'+row.dataset.method),view=document.getElementById('run-view');
  document.querySelectorAll('tr.selected').forEach(r=>r.classList.remove('selected'));
  row.classList.add('selected');
  view.innerHTML='';if(t)view.appendChild(t.content.cloneNode(true));
  view.scrollIntoView({behavior:'instant',block:'nearest'});
}
document.querySelectorAll('table.sortable th').forEach(th=>th.addEventListener('click',()=>sortTable(th)));
document.querySelectorAll('tr.run-row').forEach(r=>r.addEventListener('click',()=>showRuns(r)));
"""
