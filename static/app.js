// Conveniences only: every page works without this file (forms post, links navigate).
// - [data-countdown=N]: a button disabled for N seconds (the code-resend wait), the count shown
//   in its [data-countdown-text] child and announced politely.
// - [data-wait=N]: a reading-time notice counting down; the page reloads at zero so the server
//   decides again whether signing is open.
(function () {
  "use strict";

  function tick(el, attr, done) {
    var left = parseInt(el.getAttribute(attr), 10);
    if (!(left > 0)) { done(); return; }
    var text = el.querySelector("[data-countdown-text]");
    var timer = setInterval(function () {
      left -= 1;
      if (text) { text.textContent = left > 0 ? "（" + left + " 秒后可重新获取）" : ""; }
      if (left <= 0) { clearInterval(timer); done(); }
    }, 1000);
  }

  function start(root) {
    root.querySelectorAll("[data-countdown]").forEach(function (btn) {
      btn.disabled = true;
      tick(btn, "data-countdown", function () { btn.disabled = false; });
    });
    root.querySelectorAll("[data-wait]").forEach(function (el) {
      var left = parseInt(el.getAttribute("data-wait"), 10);
      var out = el.querySelector("[data-wait-text]");
      if (!(left > 0)) { return; }
      var timer = setInterval(function () {
        left -= 1;
        if (out) { out.textContent = String(Math.max(left, 0)); }
        if (left <= 0) { clearInterval(timer); window.location.reload(); }
      }, 1000);
    });
  }

  document.addEventListener("DOMContentLoaded", function () { start(document); });
  document.addEventListener("htmx:afterSwap", function (e) { start(e.target); });
})();
