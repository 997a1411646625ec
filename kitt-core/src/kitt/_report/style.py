"""The report's stylesheet, inlined into every page (a page must render with no network)."""

CSS = """
:root { --fg: #1f2328; --muted: #656d76; --line: #d0d7de; --bg-soft: #f6f8fa;
        --ok: #1a7f37; --bad: #cf222e; --warn: #9a6700; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
       color: var(--fg); margin: 0 auto; padding: 24px 32px 48px; max-width: 1280px; }
h1 { font-size: 22px; margin: 0 0 12px; }
h2 { font-size: 18px; margin: 32px 0 10px; padding-bottom: 4px;
     border-bottom: 1px solid var(--line); }
h3 { font-size: 15px; margin: 18px 0 6px; }
code, pre { font: 12.5px/1.4 ui-monospace, "SFMono-Regular", Menlo, Consolas,
            "DejaVu Sans Mono", monospace; }
pre { white-space: pre-wrap; word-break: break-word; margin: 4px 0; }
table { border-collapse: collapse; margin: 6px 0 14px; font-variant-numeric: tabular-nums; }
th, td { padding: 4px 10px; border-bottom: 1px solid var(--line); text-align: left;
         vertical-align: top; }
th { background: var(--bg-soft); font-weight: 600; white-space: nowrap; }
td.num { text-align: right; white-space: nowrap; }
table.identity td:first-child { color: var(--muted); white-space: nowrap; }
table.identity thead { display: none; }
table.identity.multi thead { display: table-header-group; }
table.results td:nth-child(6) { white-space: nowrap; }
table.results td:last-child { color: var(--bad); max-width: 420px; }
.time { white-space: nowrap; }
.cv { color: var(--muted); font-size: 12px; }
.badge { display: inline-block; padding: 0 8px; border-radius: 10px; font-size: 12px;
         font-weight: 600; color: #fff; background: var(--muted); }
.badge.passed { background: var(--ok); }
.badge.failed, .badge.error { background: var(--bad); }
.badge.interrupted, .badge.running { background: var(--warn); }
td.flag.critical { background: #ffebe9; color: var(--bad); font-weight: 600; }
td.flag.warning { background: #fff8c5; color: var(--warn); font-weight: 600; }
td.flag.missing { color: var(--muted); font-style: italic; }
.verdict { padding: 8px 12px; border-radius: 6px; background: #dafbe1; }
.verdict.critical { background: #ffebe9; }
.verdict.warning, .verdict.missing { background: #fff8c5; }
section.errors { border: 1px solid #ff818266; background: #fff5f5; border-radius: 6px;
                 padding: 0 16px 8px; }
section.errors h2 { border: 0; color: var(--bad); margin-top: 12px; }
section.errors li { margin: 6px 0; }
section.warnings { border: 1px solid #d4a72c66; background: #fff8c5; border-radius: 6px;
                   padding: 0 16px 8px; }
section.warnings h2 { border: 0; margin-top: 12px; }
section.warnings li { margin: 6px 0; }
.plots { display: grid; grid-template-columns: repeat(auto-fit, minmax(560px, 1fr));
         gap: 20px; }
figure { margin: 0; padding: 10px 12px; border: 1px solid var(--line); border-radius: 6px;
         min-width: 0; }
figure h3 { margin: 0 0 6px; }
figcaption { color: var(--muted); font-size: 12.5px; margin-top: 4px; }
figure.broken { border-color: var(--warn); }
svg.plot { width: 100%; height: auto; display: block; }
details { margin: 8px 0; }
summary { cursor: pointer; font-weight: 600; }
footer { margin-top: 40px; color: var(--muted); font-size: 12px; }
"""
