// Submits a page's #pick form when its pool selector changes, so that the
// selector works as a menu; without scripts, its Show button does.
(function () {
  "use strict";
  var pick = document.getElementById("pool");
  if (pick && pick.form) {
    pick.addEventListener("change", function () { pick.form.submit(); });
  }
})();
