// Bulletin rules: save one, delete one; each a call to the API, then the page is read again.
"use strict";

(() => {
  const msg = document.getElementById("bull-msg");
  const form = document.getElementById("rule-form");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const checked = (name) => [...form.querySelectorAll(`input[name="${name}"]:checked`)].map((b) => b.value);
    const body = {
      area_id: document.getElementById("r-area").value,
      source: document.getElementById("r-source").value.trim(),
      category: document.getElementById("r-category").value.trim(),
      at_time: document.getElementById("r-time").value,
      weekdays: checked("weekday").join(","),
      targets: checked("targets"),
    };
    try {
      await Radio.api("POST", "/api/v1/bulletin-rules", body);
      Radio.say(msg, Radio.t("bull.saved"), "ok");
      window.location.reload();
    } catch (err) {
      Radio.say(msg, err.message, "error");
    }
  });
  const table = document.getElementById("rules");
  if (!table) return;
  table.addEventListener("click", async (event) => {
    const button = event.target.closest("button.delete");
    if (!button) return;
    button.disabled = true;
    try {
      await Radio.api("DELETE", `/api/v1/bulletin-rules/${button.dataset.id}`);
      button.closest("tr").remove();
      Radio.say(msg, Radio.t("bull.deleted"), "ok");
    } catch (err) {
      Radio.say(msg, err.message, "error");
      button.disabled = false;
    }
  });
})();
