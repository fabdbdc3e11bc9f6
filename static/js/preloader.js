// Waits on /get-status until the sign-in is decided, then moves on. Plain fetch, no framework.
// It long-polls (/get-status?wait=N answers the moment the exchange ends); after any failed
// long poll it falls back to plain polling every poll interval. Without JavaScript the
// page's <noscript> refresh does the same through the server.
// Every change of the status line is announced (the element is an aria-live region).
(function () {
  "use strict";
  var root = document.getElementById("preloader");
  var status = document.getElementById("status");
  if (!root) { return; }
  var interval = Number(root.dataset.pollIntervalMs) || 1000;
  var limitMs = (Number(root.dataset.pollLimitSecs) || 60) * 1000;
  var provider = root.dataset.providerName || "the provider";
  var site = root.dataset.siteName || "this site";
  // Given by the page, so that they hold the path the site is mounted at.
  var statusUrl = root.dataset.statusUrl || "/get-status";
  var successUrl = root.dataset.successUrl || "/success";
  var errorUrl = root.dataset.errorUrl || "/error";
  // Say it is slow well before giving up, so nobody wonders whether the page froze.
  var slowAfterMs = Math.min(10000, limitMs / 2);
  var started = Date.now();
  var failedPolls = 0;
  // Long polls until one fails; then plain polls, which any proxy handles.
  var longPoll = true;
  var LONG_POLL_SECS = 25;

  function say(text) {
    if (status && status.textContent !== text) { status.textContent = text; }
  }

  function go(path) { window.location.replace(path); }

  var slow = false;
  // A timer, not a poll, says so: a long poll may be waiting the whole time.
  window.setTimeout(function () {
    slow = true;
    if (failedPolls < 3) { say(provider + " is taking longer than usual. Still waiting…"); }
  }, slowAfterMs);

  function again() {
    if (failedPolls >= 3) {
      say("We cannot reach " + site + " right now. Check your connection; this page keeps trying.");
    } else if (slow) {
      say(provider + " is taking longer than usual. Still waiting…");
    }
    window.setTimeout(poll, longPoll ? 0 : interval);
  }

  function poll() {
    if (Date.now() - started > limitMs) {
      // The error page explains what happened and offers "Try again".
      say("This is taking too long. Taking you to a page where you can try again…");
      go(errorUrl);
      return;
    }
    var remainingSecs = Math.floor((limitMs - (Date.now() - started)) / 1000);
    var wait = Math.max(0, Math.min(LONG_POLL_SECS, remainingSecs));
    var url = longPoll && wait > 0 ? statusUrl + "?wait=" + wait : statusUrl;
    fetch(url, { cache: "no-store", credentials: "same-origin" })
      .then(function (response) {
        if (!response.ok && response.status !== 404) { throw new Error("HTTP " + response.status); }
        return response.text();
      })
      .then(function (text) {
        failedPolls = 0;
        var answer = text.trim();
        if (answer === "ok") {
          say("Signed in. Taking you back…");
          go(successUrl);
        } else if (answer === "error") {
          say("The sign-in did not complete.");
          go(errorUrl);
        } else {
          again();
        }
      })
      .catch(function () {
        failedPolls += 1;
        longPoll = false;
        again();
      });
  }

  poll();
})();
