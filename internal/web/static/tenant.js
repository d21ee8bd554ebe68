// The lease and tenant pages' script: forms that submit once, and the
// usage chart (uPlot) drawn from the JSON the server put in
// #usage-series: GPU-hours held, metered and used per step.
(function () {
  // The box's content width: uPlot draws to exactly the width it is given.
  function boxWidth(el) {
    var cs = window.getComputedStyle(el);
    return Math.max(320, el.clientWidth - parseFloat(cs.paddingLeft) - parseFloat(cs.paddingRight));
  }
  // A form marked data-once disables its buttons when submitted, so that
  // a double click sends one request (the server also answers a replayed
  // form token with the lease it already made).
  document.querySelectorAll("form[data-once]").forEach(function (f) {
    f.addEventListener("submit", function () {
      f.querySelectorAll("button[type=submit]").forEach(function (b) { b.disabled = true; });
    });
  });

  var el = document.getElementById("usage-series");
  var box = document.getElementById("usage-chart");
  if (!el || !box || typeof uPlot === "undefined") return;
  var d = JSON.parse(el.textContent);
  var data = [d.t, d.held, d.metered, d.used];
  var opts = {
    width: boxWidth(box), height: 320,
    series: [{},
      { label: "held GPU-h", stroke: "#0072B2", fill: "#0072B233", width: 1 },
      { label: "metered GPU-h", stroke: "#009E73", width: 1 },
      { label: "used GPU-h", stroke: "#E69F00", width: 2 }],
    axes: [{}, { label: "GPU-hours per " + d.step, size: 70 }],
    scales: { x: { time: true, range: [d.from, d.to] } }
  };
  new uPlot(opts, data, box);
  box.setAttribute("data-drawn", "true");
})();
