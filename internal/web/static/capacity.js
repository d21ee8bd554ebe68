// Draws the capacity page's stacked chart from the JSON the server put in
// #series: internal (past), holdback (from now), contract, reservation,
// spot and idle GPUs per step, stacked in that order under the healthy
// line, with a dashed line at the current hour. Dragging across the chart
// reloads the page over the selected window (from/to); the server picks
// the step. (pick.js makes the pool selector submit its form.)
(function () {
  "use strict";
  // The box's content width: uPlot draws to exactly the width it is given.
  function boxWidth(el) {
    var cs = window.getComputedStyle(el);
    return Math.max(320, el.clientWidth - parseFloat(cs.paddingLeft) - parseFloat(cs.paddingRight));
  }
  var el = document.getElementById("series");
  var box = document.getElementById("chart");
  if (!el || !box || typeof uPlot === "undefined") return;
  var d = JSON.parse(el.textContent);
  var s = d.series;
  var names = ["internal", "holdback", "contract", "reservation", "spot", "idle"];
  var colors = ["#7f7f7f", "#bbbbbb", "#0072B2", "#009E73", "#E69F00", "#F0E442"];
  var data = [s.t];
  var acc = s.t.map(function () { return 0; });
  names.forEach(function (n) {
    acc = acc.map(function (v, i) { return v + s[n][i]; });
    data.push(acc.slice());
  });
  data.push(s.healthy);
  var series = [{}];
  names.forEach(function (n, i) {
    series.push({
      label: n, stroke: colors[i], fill: colors[i] + "aa", width: 1,
      // The legend shows each band's own GPUs, not the stacked sum.
      value: function (u, v, si, idx) { return idx == null ? "-" : s[n][idx]; }
    });
  });
  series.push({ label: "healthy", stroke: "#000000", width: 2 });
  var bands = [];
  for (var i = names.length; i > 1; i--) bands.push({ series: [i, i - 1] });

  function zoom(u) {
    var sel = u.select;
    if (sel.width < 5) return;
    // Whole hours: the server's steps are.
    var from = Math.floor(u.posToVal(sel.left, "x") / 3600) * 3600;
    var to = Math.ceil(u.posToVal(sel.left + sel.width, "x") / 3600) * 3600;
    if (to - from < 3600) to = from + 3600;
    var iso = function (t) { return new Date(t * 1000).toISOString().replace(/\.\d{3}Z$/, "Z"); };
    var q = new URLSearchParams({ pool: d.pool, from: iso(from), to: iso(to) });
    window.location.assign("/capacity?" + q.toString());
  }

  function nowLine(u) {
    if (d.now < s.t[0] || d.now > s.t[s.t.length - 1]) return;
    var x = Math.round(u.valToPos(d.now, "x", true));
    var ctx = u.ctx;
    ctx.save();
    ctx.strokeStyle = "#b42318";
    ctx.lineWidth = 1;
    ctx.setLineDash([5, 4]);
    ctx.beginPath();
    ctx.moveTo(x, u.bbox.top);
    ctx.lineTo(x, u.bbox.top + u.bbox.height);
    ctx.stroke();
    ctx.restore();
  }

  var opts = {
    width: boxWidth(box), height: 380, series: series, bands: bands,
    axes: [{}, { label: "GPUs", size: 70 }], scales: { x: { time: true } },
    cursor: { drag: { x: true, y: false, setScale: false } },
    hooks: {
      setSelect: [zoom],
      draw: [nowLine, function () { box.setAttribute("data-drawn", "true"); }]
    }
  };
  var plot = new uPlot(opts, data, box);
  window.addEventListener("resize", function () {
    plot.setSize({ width: boxWidth(box), height: 380 });
  });
})();
