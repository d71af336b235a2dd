// The bag labels' print page: the Print button, and a pharmacist's Reprint of one bag's label
// (POST, with the CSRF token and an idempotency key like every other write; the page then
// reloads to show the new copy, the old one being void).
(function () {
  "use strict";

  function csrfToken() {
    try {
      return JSON.parse(document.body.getAttribute("hx-headers") || "{}")["X-CSRF-Token"] || "";
    } catch (e) {
      return "";
    }
  }

  function newKey() {
    if (window.crypto && window.crypto.randomUUID) return window.crypto.randomUUID();
    return String(Date.now()) + "-" + String(Math.random()).slice(2);
  }

  async function reprint(button) {
    var bag = button.dataset.bag;
    if (!window.confirm("Reprint the label of bag " + bag + "? The label printed before will no longer scan.")) return;
    var result = document.getElementById("reprint-result");
    button.disabled = true;
    try {
      var response = await fetch(button.dataset.reprint, {
        method: "POST",
        credentials: "same-origin",
        headers: {
          "Content-Type": "application/json",
          "X-CSRF-Token": csrfToken(),
          "Idempotency-Key": newKey(),
        },
        body: "{}",
      });
      if (response.ok) {
        window.location.reload();
        return;
      }
      var data = {};
      try {
        data = await response.json();
      } catch (e) {
        data = { detail: "the server answered " + response.status };
      }
      result.textContent = "Not reprinted: " + (typeof data.detail === "string" ? data.detail : response.status);
      result.className = "form-result form-result-error";
    } catch (error) {
      result.textContent = "Not reprinted: no connection. Try again.";
      result.className = "form-result form-result-error";
    }
    button.disabled = false;
  }

  document.addEventListener("click", function (event) {
    var target = event.target;
    if (!(target instanceof Element)) return;
    if (target.id === "print-labels") {
      window.print();
    } else if (target.hasAttribute("data-reprint")) {
      reprint(target);
    }
  });
})();
