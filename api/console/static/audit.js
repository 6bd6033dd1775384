// The auditor's page: checks the record's hash chain and says the result in the page.
"use strict";

(() => {
  const button = document.getElementById("audit-verify");
  const msg = document.getElementById("verify-msg");
  if (!button) return;
  button.addEventListener("click", async () => {
    button.disabled = true;
    Radio.say(msg, Radio.t("audit.verifying"), null);
    try {
      const verdict = await Radio.api("GET", "/api/v1/audit/verify");
      if (verdict.intact) {
        Radio.say(msg, Radio.t("audit.intact", { when: Radio.time(new Date()) }), "ok");
      } else {
        const n = String(verdict.first_broken_entry);
        Radio.say(msg, Radio.t("audit.broken", { n }), "error");
      }
    } catch (err) {
      Radio.say(msg, err.message, "error");
    } finally {
      button.disabled = false;
    }
  });
})();
