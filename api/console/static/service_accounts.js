// Service accounts: create one (its key shown once, as text) and revoke one; each a call to the API.
"use strict";

(() => {
  const msg = document.getElementById("svc-msg");
  const form = document.getElementById("svc-form");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const checked = (name) => [...form.querySelectorAll(`input[name="${name}"]:checked`)].map((b) => b.value);
    const expires = document.getElementById("svc-expires").value;
    const body = {
      name: document.getElementById("svc-name").value.trim(),
      description: document.getElementById("svc-desc").value.trim(),
      areas: checked("areas"),
      scopes: checked("scopes"),
      // The end of the chosen day, Viet Nam time.
      expires_at: expires ? `${expires}T23:59:59+07:00` : null,
    };
    try {
      const created = await Radio.api("POST", "/api/v1/service-accounts", body);
      document.getElementById("svc-key-text").textContent = created.key;
      document.getElementById("svc-key").hidden = false;
      Radio.say(msg, Radio.t("svc.created", { name: created.name }), "ok");
      form.reset();
    } catch (err) {
      Radio.say(msg, err.message, "error");
    }
  });
  const table = document.getElementById("accounts");
  if (!table) return;
  table.addEventListener("click", async (event) => {
    const button = event.target.closest("button.revoke");
    if (!button) return;
    if (!window.confirm(Radio.t("svc.confirm_revoke", { name: button.dataset.name }))) return;
    button.disabled = true;
    try {
      await Radio.api("POST", `/api/v1/service-accounts/${encodeURIComponent(button.dataset.name)}/revoke`);
      button.replaceWith(Radio.text(Radio.t("svc.revoked_now")));
      Radio.say(msg, Radio.t("svc.revoked_now"), "ok");
    } catch (err) {
      Radio.say(msg, err.message, "error");
      button.disabled = false;
    }
  });
})();
