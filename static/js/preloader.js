// Polls /get-status until the sign-in is decided, then moves on. Plain fetch, no framework.
// Without JavaScript the page's <noscript> refresh does the same through the server.
(function () {
  "use strict";
  var root = document.getElementById("preloader");
  var status = document.getElementById("status");
  if (!root) { return; }
  var interval = Number(root.dataset.pollIntervalMs) || 1000;
  var limitMs = (Number(root.dataset.pollLimitSecs) || 60) * 1000;
  var started = Date.now();

  function go(path) { window.location.replace(path); }

  function poll() {
    if (Date.now() - started > limitMs) {
      if (status) { status.textContent = "This is taking too long. Taking you to a page where you can try again…"; }
      go("/error");
      return;
    }
    fetch("/get-status", { cache: "no-store", credentials: "same-origin" })
      .then(function (response) { return response.text(); })
      .then(function (text) {
        var answer = text.trim();
        if (answer === "ok") {
          if (status) { status.textContent = "Signed in. Taking you back…"; }
          go("/success");
        } else if (answer === "error") {
          if (status) { status.textContent = "The sign-in did not complete."; }
          go("/error");
        } else {
          window.setTimeout(poll, interval);
        }
      })
      .catch(function () { window.setTimeout(poll, interval); });
  }

  poll();
})();
