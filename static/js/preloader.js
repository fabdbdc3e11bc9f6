// Polls /get-status until the sign-in is decided, then moves on. Plain fetch, no framework.
// Without JavaScript the page's <noscript> refresh does the same through the server.
// Every change of the status line is announced (the element is an aria-live region).
(function () {
  "use strict";
  var root = document.getElementById("preloader");
  var status = document.getElementById("status");
  if (!root) { return; }
  var interval = Number(root.dataset.pollIntervalMs) || 1000;
  var limitMs = (Number(root.dataset.pollLimitSecs) || 60) * 1000;
  var provider = root.dataset.providerName || "the provider";
  // Say it is slow well before giving up, so nobody wonders whether the page froze.
  var slowAfterMs = Math.min(10000, limitMs / 2);
  var started = Date.now();
  var failedPolls = 0;

  function say(text) {
    if (status && status.textContent !== text) { status.textContent = text; }
  }

  function go(path) { window.location.replace(path); }

  function again() {
    var waited = Date.now() - started;
    if (failedPolls >= 3) {
      say("We cannot reach loginwith right now. Check your connection; this page keeps trying.");
    } else if (waited > slowAfterMs) {
      say(provider + " is taking longer than usual. Still waiting…");
    }
    window.setTimeout(poll, interval);
  }

  function poll() {
    if (Date.now() - started > limitMs) {
      // The error page explains what happened and offers "Try again".
      say("This is taking too long. Taking you to a page where you can try again…");
      go("/error");
      return;
    }
    fetch("/get-status", { cache: "no-store", credentials: "same-origin" })
      .then(function (response) { return response.text(); })
      .then(function (text) {
        failedPolls = 0;
        var answer = text.trim();
        if (answer === "ok") {
          say("Signed in. Taking you back…");
          go("/success");
        } else if (answer === "error") {
          say("The sign-in did not complete.");
          go("/error");
        } else {
          again();
        }
      })
      .catch(function () {
        failedPolls += 1;
        again();
      });
  }

  poll();
})();
