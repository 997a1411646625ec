// KITT's dashboard script: no inline code anywhere (the CSP forbids it).
"use strict";
(function () {
  const csrf = document.querySelector('meta[name="csrf-token"]')?.content || "";
  // htmx requests that change state carry the session's CSRF token.
  document.body.addEventListener("htmx:configRequest", (event) => {
    if (csrf) event.detail.headers["X-CSRF-Token"] = csrf;
  });
})();
