// Issuing an alert: what (a template or one's own text), where, then one tap that sends what the
// summary above the button says; the page then shows the nodes' confirmations live.
"use strict";

(() => {
  const form = document.getElementById("alert-form");
  const msg = document.getElementById("alert-msg");
  const summary = document.getElementById("alert-summary");
  const own = document.getElementById("own-text");
  const templateText = document.getElementById("tpl-text");
  Radio.coverChildren(form, "areas");

  // Ticked places, without those a ticked area above already covers.
  const places = () => [...form.querySelectorAll('input[name="areas"]:checked:not(:disabled)')];

  function request() {
    const chosen = form.querySelector('input[name="template"]:checked');
    const areas = places();
    const body = {
      areas: areas.map((a) => a.value),
      repeat: Number(document.getElementById("alert-repeat").value || 0),
      test: document.getElementById("alert-test").checked,
    };
    let title;
    if (!chosen) throw new Error(Radio.t("alert.need_what"));
    if (chosen.value) {
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

  // What the send button will do, said before it is pressed: the confirmation is on the page.
  function describe() {
    const chosen = form.querySelector('input[name="template"]:checked');
    own.hidden = !chosen || chosen.value !== "";
    templateText.textContent = chosen && chosen.value ? chosen.dataset.text : "";
    const areas = places();
    if (!chosen || !areas.length) {
      summary.textContent = Radio.t("alert.summary_empty");
      summary.classList.remove("ready");
      return;
    }
    const title = chosen.value
      ? chosen.dataset.title
      : document.getElementById("alert-title").value.trim() || Radio.t("alert.untitled");
    const kind = document.getElementById("alert-test").checked ? Radio.t("alert.a_test") : "";
    summary.textContent = Radio.t("alert.confirm_body", {
      title: title + kind,
      areas: areas.map((a) => a.dataset.name).join(", "),
    });
    summary.classList.add("ready");
  }

  // A refusal said under the button is about the form as it was: once it changes, it goes.
  const changed = () => {
    if (msg.classList.contains("error")) Radio.say(msg, "", null);
    describe();
  };
  form.addEventListener("change", changed);
  form.addEventListener("input", changed);
  describe();

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    let pending;
    try {
      pending = request();
    } catch (err) {
      Radio.say(msg, err.message, "error");
      return;
    }
    const button = document.getElementById("alert-send");
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
