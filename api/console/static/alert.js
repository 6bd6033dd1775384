// Issuing an alert: choose what and where, confirm in a second step, then watch it live.
"use strict";

(() => {
  const form = document.getElementById("alert-form");
  const confirmBox = document.getElementById("confirm");
  const msg = document.getElementById("alert-msg");
  let pending = null;

  function request() {
    const chosen = form.querySelector('input[name="template"]:checked');
    const areas = [...form.querySelectorAll('input[name="areas"]:checked')];
    const body = {
      areas: areas.map((a) => a.value),
      repeat: Number(document.getElementById("alert-repeat").value || 0),
      test: document.getElementById("alert-test").checked,
    };
    let title;
    if (chosen && chosen.value) {
      body.template = chosen.value;
      title = chosen.dataset.title;
    } else {
      body.text = document.getElementById("alert-text").value.trim();
      title = document.getElementById("alert-title").value.trim() || Radio.t("alert.untitled");
      body.title = title;
      if (!body.text) throw new Error(Radio.t("alert.need_text"));
    }
    if (!body.areas.length) throw new Error(Radio.t("alert.need_area"));
    return { body, title, names: areas.map((a) => a.dataset.name) };
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    try {
      pending = request();
    } catch (err) {
      Radio.say(msg, err.message, "error");
      return;
    }
    Radio.say(msg, "", null);
    const kind = pending.body.test ? Radio.t("alert.a_test") : "";
    document.getElementById("confirm-body").textContent = Radio.t("alert.confirm_body", {
      title: pending.title + kind,
      areas: pending.names.join(", "),
    });
    form.hidden = true;
    confirmBox.hidden = false;
    document.getElementById("confirm-yes").focus();
  });

  document.getElementById("confirm-no").addEventListener("click", () => {
    confirmBox.hidden = true;
    form.hidden = false;
    document.getElementById("alert-continue").focus();
  });

  document.getElementById("confirm-yes").addEventListener("click", async (event) => {
    const button = event.currentTarget;
    button.disabled = true;
    Radio.say(msg, Radio.t("alert.sending"), null);
    try {
      const alert = await Radio.api("POST", "/api/v1/alerts", pending.body);
      window.location.assign(`/console/alerts/${encodeURIComponent(alert.id)}`);
    } catch (err) {
      Radio.say(msg, err.message, "error");
      button.disabled = false;
    }
  });
})();
