// Draws stacked bar charts: each element with class "chart bars" and a
// data-source attribute naming a JSON block of the form
//   {"t": [unix seconds...], "unit": "GPUs",
//    "stack": [{"label": .., "color": "#rrggbb", "values": [...]}, ...],
//    "below": [{"label": .., "color": .., "values": [...]}, ...]}
// stacks "stack" from the bottom up, one bar per t, and draws each of
// "below" (negative amounts, such as credits) from zero down.
(function () {
  "use strict";
  // The box's content width: uPlot draws to exactly the width it is given.
  function boxWidth(el) {
    var cs = window.getComputedStyle(el);
    return Math.max(320, el.clientWidth - parseFloat(cs.paddingLeft) - parseFloat(cs.paddingRight));
  }
  if (typeof uPlot === "undefined") return;
  Array.prototype.forEach.call(document.querySelectorAll(".chart.bars[data-source]"), function (box) {
    var el = document.getElementById(box.getAttribute("data-source"));
    if (!el) return;
    var d = JSON.parse(el.textContent);
    var stack = d.stack || [], below = d.below || [];
    var bars = uPlot.paths.bars({ size: [0.7, 80] });
    var zero = function () { return 0; };
    // Cumulative sums from the bottom; drawn top first, so that each
    // lower band paints over the one above it from zero.
    var sums = [], acc = d.t.map(function () { return 0; });
    stack.forEach(function (s) {
      acc = acc.map(function (v, i) { return v + (s.values[i] || 0); });
      sums.push(acc.slice());
    });
    var data = [d.t], series = [{}];
    for (var i = stack.length - 1; i >= 0; i--) {
      (function (s) {
        data.push(sums[i]);
        series.push({ label: s.label, fill: s.color, stroke: s.color, width: 0, paths: bars, fillTo: zero,
          points: { show: false },
          value: function (u, v, si, idx) { return idx == null ? "-" : s.values[idx].toLocaleString(); } });
      })(stack[i]);
    }
    below.forEach(function (s) {
      data.push(s.values);
      series.push({ label: s.label, fill: s.color, stroke: s.color, width: 0, paths: bars, fillTo: zero,
        points: { show: false },
        value: function (u, v, si, idx) { return idx == null ? "-" : s.values[idx].toLocaleString(); } });
    });
    var opts = {
      width: boxWidth(box), height: 320, series: series,
      axes: [{}, { label: d.unit || "", size: 90 }],
      scales: {
        x: { time: true, range: function (u, min, max) { var pad = (d.t.length > 1 ? (d.t[1] - d.t[0]) : 86400 * 30) / 2; return [min - pad, max + pad]; } },
        y: { range: function (u, min, max) { return [Math.min(0, min), Math.max(max, 0) * 1.05 || 1]; } }
      },
      cursor: { drag: { x: false, y: false } },
      hooks: { draw: [function () { box.setAttribute("data-drawn", "true"); }] }
    };
    var plot = new uPlot(opts, data, box);
    window.addEventListener("resize", function () {
      plot.setSize({ width: boxWidth(box), height: 320 });
    });
  });
})();
