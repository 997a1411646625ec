// Interactive plots of a run (and of a trend) with uPlot, from the JSON the page embeds
// in <script type="application/json">: the same data report.html draws.
"use strict";
(function () {
  const PALETTE = ["#1f5fbf", "#c2410c", "#15803d", "#7c3aed", "#b91c1c", "#0e7490",
                   "#a16207", "#be185d"];
  const color = (i) => PALETTE[i % PALETTE.length];
  // uPlot cannot split an axis of zero span (every request took 80 ms): pad it.
  const padded = (u, min, max) => {
    if (min == null || max == null) return [0, 1];
    if (min === max) { const d = Math.abs(min) * 0.05 || 1; return [min - d, max + d]; }
    const d = (max - min) * 0.04;
    return [min - d, max + d];
  };

  function figure(parent, key, title, caption) {
    const fig = document.createElement("figure");
    fig.className = "plot";
    fig.id = "plot-" + key;
    const cap = document.createElement("figcaption");
    cap.textContent = title;
    fig.appendChild(cap);
    const box = document.createElement("div");
    box.className = "chart";
    fig.appendChild(box);
    if (caption) {
      const note = document.createElement("p");
      note.className = "caption";
      note.textContent = caption;
      fig.appendChild(note);
    }
    parent.appendChild(fig);
    return box;
  }

  function width(box) {
    return Math.max(320, Math.floor(box.getBoundingClientRect().width || 520));
  }

  // A scatter: a small square per point, drawn as the series' fill path.
  const dots = (size) => (u, sidx, i0, i1) => {
    const path = new Path2D();
    const [xs, ys] = u.data[sidx];
    for (let i = i0; i <= i1; i++) {
      if (xs[i] == null || ys[i] == null) continue;
      const x = u.valToPos(xs[i], "x", true), y = u.valToPos(ys[i], "y", true);
      path.rect(x - size / 2, y - size / 2, size, size);
    }
    return { fill: path };
  };

  // One uPlot in "mode 2": every series carries its own x values.
  function xy(box, xLabel, yLabel, series, opts) {
    opts = opts || {};
    const data = [null, ...series.map((s) => [s.x, s.y])];
    const plot = new uPlot({
      mode: 2, width: width(box), height: 260,
      scales: { x: { time: false, distr: opts.logX ? 3 : 1, range: opts.logX ? undefined : padded },
                y: { range: padded } },
      axes: [{ label: xLabel }, { label: yLabel }],
      legend: { live: false },
      series: [{}, ...series.map((s, i) => ({
        label: s.label, stroke: color(i), fill: opts.points ? color(i) : undefined,
        width: opts.points ? 0 : 1.6,
        paths: opts.points ? dots(3) : (opts.steps ? uPlot.paths.stepped({ align: 1 }) : undefined),
        points: { show: false },
      }))],
    }, data, box);
    box.dataset.series = String(series.length);
    box.dataset.points = String(series.reduce((n, s) => n + s.x.length, 0));
    return plot;
  }

  function bars(box, labels, series, yLabel) {
    const x = labels.map((_, i) => i);
    const plot = new uPlot({
      width: width(box), height: 260,
      scales: { x: { time: false, range: [-0.5, labels.length - 0.5] }, y: { range: [0, 1] } },
      axes: [{ values: (u, ticks) => ticks.map((t) => labels[t] ?? ""), space: 40 },
             { label: yLabel }],
      legend: { live: false },
      series: [{}, ...series.map((s, i) => ({
        label: s.label, fill: color(i), stroke: color(i),
        paths: uPlot.paths.bars({ size: [0.8 / series.length, 60], align: 0 }),
        points: { show: false },
      }))],
    }, [x, ...series.map((s) => s.y)], box);
    box.dataset.series = String(series.length);
    box.dataset.points = String(labels.length * series.length);
    return plot;
  }

  function distribution(parent, key, title, axis, dist) {
    if (!dist) return;
    const cdf = figure(parent, key + "-cdf", title + ": CDF",
                       dist.series.map((s) => s.label + " n=" + s.n).join(", "));
    xy(cdf, axis, "fraction of requests",
       dist.series.map((s) => ({ label: s.label, x: s.cdf.x, y: s.cdf.y })));
    const hist = figure(parent, key + "-hist", title + ": histogram", null);
    xy(hist, axis, "requests", dist.series.map((s) => ({
      label: s.label, x: dist.edges.slice(0, -1), y: s.histogram })), { steps: true });
  }

  function runPlots(data, parent) {
    distribution(parent, "e2e", "End-to-end latency", "ms", data.e2e);
    distribution(parent, "ttft", "Time to first token", "ms", data.ttft);
    if (data.itl.length) {
      xy(figure(parent, "itl", "Inter-token latency over time",
                "one point per successful request"),
         "request start (s)", "mean ITL (ms)", data.itl, { points: true });
    }
    if (data.throughput.length) {
      xy(figure(parent, "throughput", "Throughput vs concurrency", null),
         "concurrency", "output tokens/s", data.throughput, { logX: true });
    }
    if (data.memory.length) {
      xy(figure(parent, "memory", "Memory over time", null), "s", "MiB", data.memory);
    }
    if (data.quality.length) {
      const labels = data.quality.map((q) => q.name);
      bars(figure(parent, "quality", "Quality scores", null), labels,
           [{ label: "score", y: data.quality.map((q) => q.value) }], "score");
    }
    if (data.subjects.length) {
      const labels = [...new Set(data.subjects.map((s) => s.subject))];
      const runs = [...new Set(data.subjects.map((s) => s.run + " " + s.benchmark))];
      const series = runs.map((name) => ({ label: name, y: labels.map((subject) => {
        const hit = data.subjects.find((s) => s.run + " " + s.benchmark === name &&
                                         s.subject === subject);
        return hit ? hit.accuracy : null; }) }));
      bars(figure(parent, "subjects", "Accuracy per subject", null), labels, series,
           "accuracy");
    }
  }

  function trendPlot(trend, parent) {
    if (!trend || !trend.points.length) return;
    const t = trend.points.map((p) => Date.parse(p.run.started_at) / 1000);
    const y = trend.points.map((p) => p.stats.mean);
    const flagged = trend.points.map((p, i) =>
      (p.flag === "warning" || p.flag === "critical") ? i : -1).filter((i) => i >= 0);
    const box = figure(parent, "trend", trend.benchmark + " · " + trend.metric,
                       flagged.length + " regression(s) marked");
    const plot = new uPlot({
      mode: 2, width: width(box), height: 300,
      scales: { x: { time: true, range: padded }, y: { range: padded } },
      axes: [{}, { label: trend.unit || "" }],
      series: [{}, { label: trend.metric, stroke: color(0), width: 1.6,
                     points: { show: true, size: 4 } },
               { label: "regression", stroke: "#b3261e", fill: "#b3261e", width: 0,
                 paths: dots(9), points: { show: false } }],
    }, [null, [t, y], [flagged.map((i) => t[i]), flagged.map((i) => y[i])]], box);
    box.dataset.series = "2";
    box.dataset.points = String(t.length);
    box.dataset.regressions = String(flagged.length);
    return plot;
  }

  function load(id) {
    const node = document.getElementById(id);
    return node ? JSON.parse(node.textContent) : null;
  }

  const run = load("plot-data");
  if (run) runPlots(run, document.getElementById("plots"));
  const trend = load("trend-data");
  if (trend) trendPlot(trend, document.getElementById("trend-plot"));
  document.documentElement.dataset.chartsReady = "1";
})();
