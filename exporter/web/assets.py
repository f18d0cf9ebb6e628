"""The landing page's style and script, inline, with the Content-Security-Policy that allows
exactly them and nothing else.

Inline so that the page works offline, behind basic auth and without a second request;
pinned by hash so that, should a string from the cloud ever slip past escaping, the browser
still runs no script and loads nothing from anywhere.
"""

from __future__ import annotations

import base64
import hashlib

# Widths of the targets table's columns, in its order: fixed, so that long names and
# messages wrap inside their cell instead of pushing columns off-screen.
TARGET_COLUMN_WIDTHS = ("9%", "11%", "11%", "12%", "8%", "8%", "5%", "7%", "8%", "21%")

STYLE = (
    """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
h1{margin:0 0 .2em}h2{margin:1.4em 0 .4em;font-size:1.15em}
table{border-collapse:collapse;width:100%;table-layout:fixed;font-size:.9em}
td,th{border:1px solid #ccc;padding:.25em .5em;text-align:left;vertical-align:top;
overflow-wrap:anywhere;unicode-bidi:isolate}
.message{unicode-bidi:isolate}
.notice{background:#fdd;border-left:.35em solid #c00;padding:.3em .6em;overflow-wrap:anywhere}
th{background:#f3f3f3}th[data-col]{cursor:pointer;user-select:none}
th[aria-sort=ascending]::after{content:" \\25B2"}th[aria-sort=descending]::after{content:" \\25BC"}
tr.down td{background:#fdd}tr.s-error td{background:#f8d0d0}tr.s-busy td{background:#fff1c9}
tr.s-gone td{background:#e6e6e6;color:#555}tr.failing td:first-child{border-left:.35em solid #c00}
.badge{display:inline-block;padding:0 .4em;border-radius:.6em;font-size:.85em;background:#c00;
color:#fff}
.summary{display:flex;flex-wrap:wrap;gap:.4em 1.2em;margin:.3em 0}
.summary button{font:inherit;border:1px solid #bbb;border-radius:.3em;background:#fafafa;
padding:.15em .5em;cursor:pointer}
.summary button[aria-pressed=true]{outline:2px solid #246;background:#def}
.summary .s-error{background:#f8d0d0}.summary .s-busy{background:#fff1c9}
.summary .s-gone{background:#e6e6e6}.summary .failing{border-left:.35em solid #c00}
.message{display:block;color:#700;font-size:.9em}
.controls{margin:.5em 0}.controls input{font:inherit;width:min(30em,90%)}
.muted{color:#666}
#targets td{white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
#targets td .message{display:inline;margin-left:.4em}
.scroll{overflow-x:auto}.scroll table{min-width:44em}
tr.s-error{background:#f8d0d0}tr.s-busy{background:#fff1c9}tr.s-gone{background:#e6e6e6}
.attention{background:#fdd;border-left:.35em solid #c00;padding:.3em .6em;font-weight:600}
.calm{color:#275;margin:.2em 0}
@media (max-width:900px){
body{margin:.7em}h1{font-size:1.5em}
#targets,#targets tbody,#targets tr,#targets td{display:block;width:auto}
#targets colgroup,#targets thead{display:none}
#targets tr{border:1px solid #bbb;border-radius:.4em;margin:0 0 .6em;padding:.3em .6em}
#targets tr[hidden]{display:none}
#targets td{border:0;padding:.1em 0 .1em 8em;position:relative;min-height:1.2em}
#targets td::before{content:attr(data-label);position:absolute;left:0;width:7.6em;color:#555;
font-weight:600;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
#targets td:empty{display:none}
#targets td{white-space:normal;overflow-wrap:anywhere}
#targets td .message{display:block;margin:0}
#targets tr.failing td:first-child{border-left:0}#targets tr.failing{border-left:.35em solid #c00}
}
""".strip()
    + "".join(
        f"#targets col:nth-child({n}){{width:{w}}}" for n, w in enumerate(TARGET_COLUMN_WIDTHS, 1)
    )
)

# Sorting and filtering over the rows already in the page: no framework, no request.
SCRIPT = """
(function () {
  // Reload every poll interval while the box is ticked (its state kept for the tab), but
  // not while a person is filtering.
  var box = document.getElementById("refresh");
  if (!box) { return; }
  var key = "huaweicloud-image-exporter.refresh";
  try { if (sessionStorage.getItem(key) === "off") { box.checked = false; } } catch (e) {}
  var timer = null;
  function arm() {
    if (timer) { clearTimeout(timer); timer = null; }
    if (!box.checked) { return; }
    timer = setTimeout(function () {
      var filter = document.getElementById("filter");
      if (filter && filter.value) { arm(); return; }
      location.reload();
    }, Number(box.getAttribute("data-seconds")) * 1000);
  }
  box.addEventListener("change", function () {
    try { sessionStorage.setItem(key, box.checked ? "on" : "off"); } catch (e) {}
    arm();
  });
  arm();
})();
(function () {
  var table = document.getElementById("targets");
  if (!table) { return; }
  var body = table.tBodies[0];
  var rows = Array.prototype.slice.call(body.rows);
  var input = document.getElementById("filter");
  var shown = document.getElementById("shown");
  var state = "";
  var texts = null;  // each row's text, lower-cased, read on the first filtering
  function apply() {
    var words = input.value.toLowerCase().split(/\\s+/).filter(Boolean);
    if (words.length && texts === null) {
      texts = new Map();
      rows.forEach(function (row) { texts.set(row, row.textContent.toLowerCase()); });
    }
    var count = 0;
    rows.forEach(function (row) {
      var text = words.length ? texts.get(row) : "";
      var states = " " + row.getAttribute("data-state") + " ";
      var ok = (!state || states.indexOf(" " + state + " ") >= 0) &&
        words.every(function (w) { return text.indexOf(w) >= 0; });
      row.hidden = !ok;
      if (ok) { count++; }
    });
    shown.textContent = String(count);
  }
  input.addEventListener("input", apply);
  Array.prototype.forEach.call(document.querySelectorAll(".summary button"), function (b) {
    b.addEventListener("click", function () {
      var pressed = b.getAttribute("aria-pressed") === "true";
      Array.prototype.forEach.call(document.querySelectorAll(".summary button"), function (o) {
        o.setAttribute("aria-pressed", "false");
      });
      state = pressed ? "" : b.getAttribute("data-state");
      b.setAttribute("aria-pressed", pressed ? "false" : "true");
      apply();
    });
  });
  Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th) {
    var col = th.getAttribute("data-col");
    if (col === null) { return; }
    th.addEventListener("click", function () {
      var ascending = th.getAttribute("aria-sort") !== "ascending";
      Array.prototype.forEach.call(table.tHead.rows[0].cells, function (o) {
        o.removeAttribute("aria-sort");
      });
      th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
      var numeric = th.getAttribute("data-type") === "number";
      function key(row) {
        var cell = row.cells[Number(col)];
        var v = cell.getAttribute("data-sort");
        if (v === null) { v = cell.textContent; }
        return numeric ? (v === "" ? -Infinity : Number(v)) : v.toLowerCase();
      }
      var keyed = rows.map(function (row, i) { return [key(row), i, row]; });
      keyed.sort(function (a, b) {
        var c = a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] - b[1];
        return ascending ? c : -c;
      });
      rows = keyed.map(function (k) { return k[2]; });
      var fragment = document.createDocumentFragment();
      rows.forEach(function (row) { fragment.appendChild(row); });
      body.appendChild(fragment);
    });
  });
  apply();
})();
""".strip()


def _sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


CONTENT_SECURITY_POLICY = (
    f"default-src 'none'; style-src {_sha256(STYLE)}; script-src {_sha256(SCRIPT)}; "
    "img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
