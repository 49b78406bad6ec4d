"""``/docs``: an API reference page that works offline.

FastAPI's default Swagger UI / ReDoc pages load their JavaScript and CSS from a CDN, so they are
blank on an air-gapped host, and no installed package ships those assets. This page is rendered
on the server from the OpenAPI schema — plain HTML, no script, no external asset: every
endpoint with its method, summary, auth, parameters, request body and responses, and each
model's fields. The machine-readable schema stays at ``/openapi.json``.
"""

from __future__ import annotations

import html
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

router = APIRouter(include_in_schema=False)

_STYLE = """body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;
color:#222}h2{border-bottom:1px solid #ccc;margin-top:2rem}.op{margin:1rem 0;padding:.5rem 1rem;
border-left:4px solid #888;background:#f7f7f7}.m{font-weight:bold;font-family:monospace;
display:inline-block;min-width:4.5rem}.get{color:#06c}.post{color:#080}.delete{color:#c00}
code,td{font-family:monospace;font-size:.9rem}table{border-collapse:collapse;margin:.3rem 0}
td,th{border:1px solid #ddd;padding:.15rem .5rem;text-align:left}.lock{color:#a60}"""


def _ref_name(schema: dict[str, Any]) -> str:
    ref = schema.get("$ref", "")
    if ref:
        return str(ref).rsplit("/", 1)[-1]
    if "anyOf" in schema:
        return " | ".join(_ref_name(s) for s in schema["anyOf"])
    if schema.get("type") == "array":
        return f"list[{_ref_name(schema.get('items', {}))}]"
    if "enum" in schema:
        return " | ".join(repr(v) for v in schema["enum"])
    return str(schema.get("type", "object"))


def _operation(path: str, method: str, op: dict[str, Any]) -> str:
    e = html.escape
    out = [f'<div class="op" id="{e(op.get("operationId", ""))}"><span class="m {method}">'
           f'{method.upper()}</span> <code>{e(path)}</code> — {e(op.get("summary", ""))}']
    if op.get("security"):
        out.append(' <span class="lock">(bearer token)</span>')
    params = op.get("parameters", [])
    if params:
        out.append("<table><tr><th>parameter</th><th>in</th><th>type</th><th>required</th>"
                   "<th>notes</th></tr>")
        for p in params:
            schema = p.get("schema", {})
            notes = p.get("description", "") or schema.get("pattern", "")
            out.append(f"<tr><td>{e(p['name'])}</td><td>{e(p['in'])}</td>"
                       f"<td>{e(_ref_name(schema))}</td><td>{p.get('required', False)}</td>"
                       f"<td>{e(str(notes))}</td></tr>")
        out.append("</table>")
    body = op.get("requestBody", {}).get("content", {}).get("application/json", {})
    if body:
        name = _ref_name(body.get("schema", {}))
        out.append(f'<div>body: <a href="#model-{e(name)}"><code>{e(name)}</code></a></div>')
    responses = []
    for code, resp in op.get("responses", {}).items():
        schema = resp.get("content", {}).get("application/json", {}).get("schema")
        what = f" <code>{e(_ref_name(schema))}</code>" if schema else ""
        responses.append(f"<b>{e(code)}</b>{what} {e(resp.get('description', ''))}")
    out.append("<div>responses: " + "; ".join(responses) + "</div></div>")
    return "".join(out)


def _model(name: str, schema: dict[str, Any]) -> str:
    e = html.escape
    required = set(schema.get("required", []))
    rows = "".join(
        f"<tr><td>{e(field)}</td><td>{e(_ref_name(spec))}</td><td>{field in required}</td>"
        f"<td>{e(str(spec.get('description', '')))}</td></tr>"
        for field, spec in schema.get("properties", {}).items())
    doc = e(str(schema.get("description", "")))
    return (f'<h3 id="model-{e(name)}">{e(name)}</h3><p>{doc}</p><table><tr><th>field</th>'
            f"<th>type</th><th>required</th><th>notes</th></tr>{rows}</table>")


def render(schema: dict[str, Any]) -> str:
    e = html.escape
    info = schema.get("info", {})
    ops = [_operation(path, method, op) for path, item in schema.get("paths", {}).items()
           for method, op in item.items()]
    models = [_model(n, s) for n, s in sorted(schema.get("components", {})
                                              .get("schemas", {}).items())]
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{e(info.get('title', ''))}"
            f"</title><style>{_STYLE}</style></head><body><h1>{e(info.get('title', ''))} "
            f"{e(info.get('version', ''))}</h1><p>{e(info.get('description', ''))}</p>"
            "<p>Machine-readable schema: <a href='openapi.json'>/openapi.json</a>. Protected "
            "endpoints need <code>Authorization: Bearer &lt;token&gt;</code>.</p>"
            "<h2>Endpoints</h2>" + "".join(ops) + "<h2>Models</h2>" + "".join(models)
            + "</body></html>")


@router.get("/docs", response_class=HTMLResponse)
def docs(request: Request) -> HTMLResponse:
    return HTMLResponse(render(request.app.openapi()))
