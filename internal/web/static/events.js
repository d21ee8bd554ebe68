// Follows /events/stream (server-sent events, authenticated by the session
// cookie) and puts each new event at the top of #events, in the markup the
// server renders. #events gets data-connected="true" while the stream is
// open; EventSource reconnects by itself (resuming after the last event
// received), except after an "end" event: the session or its key is no
// longer valid.
(function () {
  "use strict";
  var list = document.getElementById("events");
  var live = document.getElementById("live");
  if (!list || typeof EventSource === "undefined") return;
  var keep = parseInt(list.getAttribute("data-keep"), 10) || 500;
  var after = list.getAttribute("data-after") || "0";
  var es = new EventSource("/events/stream?after=" + encodeURIComponent(after));
  var state = function (on, text) {
    list.setAttribute("data-connected", on ? "true" : "false");
    if (live) live.textContent = text;
  };
  es.onopen = function () { state(true, "(live)"); };
  es.onerror = function () { state(false, "(reconnecting…)"); };
  es.addEventListener("end", function () {
    es.close();
    state(false, "(stopped: signed out; reload to sign in)");
  });
  var span = function (cls, text) {
    var s = document.createElement("span");
    s.className = cls;
    s.textContent = text;
    return s;
  };
  es.onmessage = function (m) {
    var e = JSON.parse(m.data);
    if (list.querySelector('li[data-seq="' + e.seq + '"]')) return;
    var li = document.createElement("li");
    li.setAttribute("data-seq", String(e.seq));
    li.setAttribute("data-type", e.type);
    li.appendChild(span("seq", "#" + e.seq));
    li.appendChild(document.createTextNode(" "));
    var t = document.createElement("time");
    t.setAttribute("datetime", e.at);
    t.textContent = e.when;
    li.appendChild(t);
    li.appendChild(document.createTextNode(" "));
    var b = document.createElement("b");
    b.className = "type";
    b.textContent = e.type;
    li.appendChild(b);
    [["tenant", e.tenant], ["lease", e.lease], ["node", e.node], ["detail", e.detail]].forEach(function (f) {
      if (!f[1]) return;
      li.appendChild(document.createTextNode(" "));
      if (f[0] === "lease") {
        var a = document.createElement("a");
        a.className = "lease";
        a.href = "/leases/" + encodeURIComponent(f[1]);
        a.textContent = f[1];
        li.appendChild(a);
      } else {
        li.appendChild(span(f[0], f[1]));
      }
    });
    li.classList.add("new");
    var empty = list.querySelector("li.empty");
    if (empty) empty.remove();
    list.insertBefore(li, list.firstChild);
    while (list.children.length > keep) list.removeChild(list.lastChild);
  };
})();
