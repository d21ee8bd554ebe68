// Draws the capacity page's stacked chart from the JSON the server put in
// #series: holdback, contract, reservation, spot and free GPUs per step,
// stacked in that order under the healthy line.
(function () {
  var el = document.getElementById("series");
  var box = document.getElementById("chart");
  if (!el || !box || typeof uPlot === "undefined") return;
  var d = JSON.parse(el.textContent);
  var names = ["holdback", "contract", "reservation", "spot", "free"];
  var colors = ["#999999", "#0072B2", "#009E73", "#E69F00", "#F0E442"];
  var data = [d.t];
  var acc = d.t.map(function () { return 0; });
  names.forEach(function (n) {
    acc = acc.map(function (v, i) { return v + d[n][i]; });
    data.push(acc.slice());
  });
  data.push(d.healthy);
  var series = [{}];
  names.forEach(function (n, i) {
    series.push({ label: n, stroke: colors[i], fill: colors[i] + "99", width: 1 });
  });
  series.push({ label: "healthy", stroke: "#000000", width: 2 });
  var bands = [];
  for (var i = names.length; i > 1; i--) bands.push({ series: [i, i - 1] });
  var opts = { width: Math.max(600, box.clientWidth), height: 360, series: series, bands: bands,
    axes: [{}, { label: "GPUs", size: 70 }], scales: { x: { time: true } } };
  new uPlot(opts, data, box);
  box.setAttribute("data-drawn", "true");
})();
