// The relay page of a posted sign-in answer (Sign in with Apple): the provider posted it
// from its own site, without this site's SameSite=Lax cookies; submitting the same fields
// from here brings them along. At once, so the page is only seen without JavaScript, where
// its Continue button does the same.
(function () {
  "use strict";
  var form = document.getElementById("relay");
  if (form) {
    form.submit();
  }
})();
