// Facebook sends people back to the redirect URI with "#_=_" appended, and browsers carry a
// fragment across redirects that have none of their own, so the pages after the callback
// (the preloader, the error page, home) would show it in the address bar and keep it in
// bookmarks. It means nothing: drop it without reloading. Only that exact fragment, so a
// fragment a page or a return_to target means is left alone. Without JavaScript it stays on
// the page it arrived at; the preloader's refresh and every later link leave it behind.
(function () {
  "use strict";
  if (window.location.hash === "#_=_" && window.history && window.history.replaceState) {
    window.history.replaceState(
      window.history.state,
      "",
      window.location.pathname + window.location.search
    );
  }
})();
