"""The run's HTML pages: each stage's executed notebook as a page that stands alone (its title
and a header naming the run, the database, the operator, when and how it ended), and the run's
index.html (written from the manifest once it is final: verify renders it again and compares).
"""

from __future__ import annotations

import hashlib
import json
import re
from html import escape
from pathlib import Path

import nbformat

from . import db

INDEX = "index.html"
# How index() renders. verify compares an index.html only with what this version renders from the
# same manifest: raise it whenever index() changes, so older runs are not reported as changed.
FORMAT = 1
STYLE = ("body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,'DejaVu Sans',sans-serif;margin:1.5em}"
         "table{border-collapse:collapse;margin:.5em 0 1.2em}th,td{border:1px solid #bbb;padding:.25em .6em;"
         "text-align:left;vertical-align:top}th{background:#eee}.passed,.ok{color:#166534}"
         ".failed,.error,.gate-failed{color:#b91c1c}code{font-size:90%}.run-header{border:1px solid #999;"
         "background:#f6f6f6;padding:.6em 1em;margin:0 0 1em}.run-header td,.run-header th{border:none;"
         "padding:.1em .8em .1em 0}")


def title(stage: str, run_id: str) -> str:
    return f"{stage} · {run_id}"


def header(facts: dict) -> str:
    """A small table of ``facts`` (label -> text) that heads a page."""
    rows = "".join(f"<tr><th>{escape(k)}</th><td>{escape(str(v))}</td></tr>" for k, v in facts.items())
    return f'<div class="run-header"><table>{rows}</table></div>'


def stage_facts(record: dict, stage: str, started: str, result: str) -> dict:
    """What heads a stage's page: the run, the database (without a password), who ran it, when
    the stage started and how it ended."""
    operator = record.get("operator") or {}
    return {"stage": stage, "run id": record.get("run_id"), "runbook": (record.get("runbook") or {}).get("name"),
            "database": (record.get("database") or {}).get("dsn"),
            "operator": f"{operator.get('user')}@{operator.get('host')}",
            "started": started, "result": result}


def export_stage(notebook: Path, facts: dict) -> Path:
    """The executed notebook as one HTML file that opens offline (images inline), titled
    ``<stage> · <run id>`` and headed by ``facts``."""
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(mathjax_url="", require_js_url="", jquery_url="")
    page = title(facts["stage"], facts["run id"])
    html, _ = exporter.from_notebook_node(nbformat.read(notebook, as_version=4),
                                          resources={"metadata": {"name": page}})
    html = re.sub(r"<title>.*?</title>", lambda _: f"<title>{escape(page)}</title>", html, count=1, flags=re.S)
    html = re.sub(r"(<body[^>]*>)", lambda m: m.group(1) + header(facts), html, count=1)
    out = notebook.with_suffix(".html")
    out.write_text(db.redact(html), encoding="utf-8")
    return out


def index(run_dir: Path, signature: str) -> str:
    """The run's summary page, from its manifest: runbook, parameters, result, each stage with
    its time, gates and a link to its page, the manifest's sha256 and ``signature`` (seal.described)."""
    manifest_bytes = (Path(run_dir) / "manifest.json").read_bytes()
    m = json.loads(manifest_bytes)
    digest = hashlib.sha256(manifest_bytes).hexdigest()
    operator = m.get("operator") or {}
    facts = {"run id": m.get("run_id"), "runbook": f"{m['runbook']['name']} ({m['runbook']['path']}, "
             f"sha256 {m['runbook']['sha256'][:16]}…)",
             "database": (m.get("database") or {}).get("dsn"),
             "server": f"PostgreSQL {(m.get('database') or {}).get('server_version')}, system identifier "
                       f"{(m.get('database') or {}).get('system_identifier') or 'not readable'}",
             "operator": f"{operator.get('user')}@{operator.get('host')}",
             "started": m.get("started_at"), "ended": m.get("ended_at"), "result": m.get("result"),
             "manifest sha256": digest, "signature": signature}
    ci = m.get("ci")
    if ci:
        facts["CI"] = ", ".join(f"{k} {v}" for k, v in ci.items() if v)
    link = m.get("previous_manifest")
    facts["previous run"] = (f"{link['run_id']} (manifest sha256 {link['sha256']})" if link
                             else "none: the first run against this database here")
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{escape(m.get('run_id') or '')} · "
             f"{escape(m['runbook']['name'])}</title><style>{STYLE}</style></head><body>",
             f"<h1>Run {escape(m.get('run_id') or '')}: <span class='{escape(str(m.get('result')))}'>"
             f"{escape(str(m.get('result')))}</span></h1>", header(facts), "<h2>Stages</h2>", _stages(m),
             "<h2>Parameters</h2>", _parameters(m)]
    writes = (m.get("interactive_writes") or {}).get("writes")
    if writes:
        parts += ["<h2>Writes outside the runner since the previous run</h2>", _table(writes)]
    parts += ["<h2>How to check this run</h2><p><code>tenancy-runbook verify " + escape(str(m.get("run_id")))
              + " --expect-sha256 " + digest + "</code> (the sha256 from the change ticket), or <code>"
              "--allowed-signers FILE</code> for a signed run. This page is rendered from manifest.json; "
              "verify renders it again and compares.</p></body></html>"]
    return "\n".join(parts) + "\n"


def write_index(run_dir: Path, signature: str) -> Path:
    out = Path(run_dir) / INDEX
    out.write_text(db.redact(index(run_dir, signature)), encoding="utf-8")
    return out


def index_problems(run_dir: Path, signature: str) -> list[str]:
    """index.html is missing, or no longer what the manifest renders to."""
    path = Path(run_dir) / INDEX
    if not path.is_file():
        return [f"missing: {INDEX}"]
    if path.read_text(encoding="utf-8") != db.redact(index(run_dir, signature)):
        return [f"changed: {INDEX} (it no longer shows what manifest.json records)"]
    return []


def _stages(m: dict) -> str:
    rows = []
    for s in m.get("stages", []):
        page = f"<a href='{escape(s['html'])}'>{escape(s['name'])}</a>" if s.get("html") else escape(s["name"])
        gates = "<br>".join(f"<span class='{escape(g['result'])}'>{escape(g['result'])}</span>: "
                            f"<code>{escape(g['assert'])}</code>"
                            + (f"<br><small>{escape(g['message'][:500])}</small>" if g.get("message") else "")
                            for g in s.get("gates", [])) or "none"
        seconds = f"{s['seconds']:.1f} s" if isinstance(s.get("seconds"), (int, float)) else ""
        rows.append(f"<tr><td>{page}</td><td class='{escape(s['result'].replace(' ', '-'))}'>"
                    f"{escape(s['result'])}</td><td>{seconds}</td><td>{gates}</td></tr>")
    return ("<table><tr><th>stage</th><th>result</th><th>time</th><th>gates</th></tr>"
            + "".join(rows) + "</table>")


def _parameters(m: dict) -> str:
    names: dict = {}
    for s in m.get("stages", []):
        for k, v in (s.get("parameters") or {}).items():
            names.setdefault(k, v)
    return _table([{"parameter": k, "value": v} for k, v in names.items()]) if names else "<p>none</p>"


def _table(rows: list[dict]) -> str:
    columns = list(dict.fromkeys(k for r in rows for k in r))
    head = "".join(f"<th>{escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{escape(str(r.get(c, '')))}</td>" for c in columns) + "</tr>"
                   for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"
