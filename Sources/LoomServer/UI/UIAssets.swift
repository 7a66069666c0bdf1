/// The UI's stylesheet and script, compiled into the binary.
enum UIAssets {
    static let css = """
        :root { --fg: #1f2937; --muted: #6b7280; --line: #e5e7eb; --accent: #2563eb; --bg: #fff; --soft: #f9fafb; }
        * { box-sizing: border-box; }
        body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); background: var(--bg); }
        header { display: flex; align-items: center; gap: 24px; padding: 10px 24px; border-bottom: 1px solid var(--line); background: var(--soft); }
        header .brand { font-weight: 700; font-size: 18px; color: var(--fg); text-decoration: none; }
        nav a { margin-right: 16px; color: var(--muted); text-decoration: none; }
        nav a.active, nav a:hover { color: var(--accent); }
        main { padding: 16px 24px 48px; max-width: 1400px; }
        h1 { font-size: 22px; margin: 6px 0 12px; } h2 { font-size: 16px; margin: 20px 0 8px; }
        a { color: var(--accent); }
        .muted { color: var(--muted); } .error { color: #b91c1c; }
        .crumbs { margin: 0; color: var(--muted); }
        .toolbar { display: flex; flex-wrap: wrap; gap: 8px; align-items: center; margin: 8px 0 12px; }
        input[type=text], input[type=search], select { padding: 5px 8px; border: 1px solid #d1d5db; border-radius: 4px; font: inherit; }
        button { padding: 5px 12px; border: 1px solid var(--accent); background: var(--accent); color: #fff; border-radius: 4px; font: inherit; cursor: pointer; }
        button[disabled] { opacity: .45; cursor: default; }
        table.grid { border-collapse: collapse; width: 100%; margin-bottom: 8px; }
        .grid th, .grid td { border-bottom: 1px solid var(--line); padding: 5px 8px; text-align: left; vertical-align: top; }
        .grid thead th { background: var(--soft); position: sticky; top: 0; white-space: nowrap; }
        .grid th.sortable a { color: var(--fg); text-decoration: none; }
        .grid td.num { text-align: right; font-variant-numeric: tabular-nums; }
        .grid tr:hover td { background: #f3f4f6; }
        .compare tr.diff td { background: #fef9c3; }
        .grid tr.selected td { background: #eef2ff; }
        .status { font-size: 12px; padding: 1px 6px; border-radius: 8px; background: #e5e7eb; }
        .status.finished { background: #dcfce7; } .status.failed, .status.killed { background: #fee2e2; } .status.running { background: #dbeafe; }
        .tag { display: inline-block; font-size: 12px; padding: 1px 6px; margin: 1px; border-radius: 4px; background: #eef2ff; }
        .state-succeeded { background: #dcfce7; } .state-cached { background: #cffafe; } .state-failed { background: #fee2e2; }
        .state-running { background: #dbeafe; } .state-skipped, .state-cancelled { background: #f3f4f6; }
        .state-rolled_back { background: #fee2e2; } .state-paused, .state-aborted { background: #fef9c3; }
        svg.bar { vertical-align: middle; } .bar-bg { fill: #f3f4f6; } .bar-fill { fill: #6366f1; }
        td.bar { width: 30%; min-width: 160px; background: #f3f4f6; } td.bar span { display: block; height: 10px; background: #6366f1; border-radius: 2px; }
        pre.text { white-space: pre-wrap; max-width: 60em; margin: 0; font-size: 12px; }
        pre.diff { background: #f9fafb; padding: 8px; } pre.diff ins { background: #dcfce7; text-decoration: none; display: block; }
        pre.diff del { background: #fee2e2; text-decoration: none; display: block; } pre.diff .same { display: block; color: #4b5563; }
        .rollout { border: 1px solid var(--line); border-radius: 6px; padding: 4px 12px; margin: 8px 0; }
        svg.dag, svg.lineage { display: block; margin: 12px 0; overflow: visible; }
        svg.dag text, svg.lineage text { font-family: inherit; }
        .facts { display: grid; grid-template-columns: max-content 1fr max-content 1fr; gap: 4px 16px; }
        .facts dt { color: var(--muted); } .facts dd { margin: 0; }
        .charts { display: flex; flex-wrap: wrap; gap: 12px; } .charts figure { margin: 0; border: 1px solid var(--line); border-radius: 6px; }
        svg.chart { width: 560px; height: 260px; display: block; }
        .chart-title { font-size: 13px; font-weight: 600; fill: var(--fg); } .chart-tick, .chart-legend { font-size: 10px; fill: var(--muted); }
        .chart-frame { fill: none; stroke: var(--line); } .chart-grid { stroke: #f3f4f6; } .chart-empty { fill: var(--muted); font-size: 12px; }
        .cols { display: grid; grid-template-columns: 1fr 1fr; gap: 24px; }
        .columns div { display: flex; flex-wrap: wrap; gap: 4px 14px; padding: 6px 0; }
        .pager { color: var(--muted); }
        pre.template { background: var(--soft); border: 1px solid var(--line); padding: 10px; white-space: pre-wrap; }
        ul.files { list-style: none; padding-left: 0; } ul.files li { padding: 2px 0; }
        """

    static let js = """
        // Enable "Compare selected" when at least two runs are ticked; "select all" ticks the page.
        (function () {
          var form = document.getElementById('compare-form');
          if (!form) return;
          var button = document.getElementById('compare');
          var boxes = function () { return form.querySelectorAll('input[name=runs]'); };
          var update = function () {
            var n = 0;
            boxes().forEach(function (b) { if (b.checked) n++; });
            button.disabled = n < 2;
            button.textContent = n >= 2 ? 'Compare ' + n + ' runs' : 'Compare selected';
          };
          form.addEventListener('change', function (e) {
            if (e.target && e.target.id === 'select-all') {
              boxes().forEach(function (b) { b.checked = e.target.checked; });
            }
            update();
          });
          update();
        })();
        """
}
