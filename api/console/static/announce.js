// Announcements: how the text will be read, its rendered audio, and recordings.
"use strict";

(() => {
  const write = document.getElementById("write");
  const upload = document.getElementById("upload");
  const writeMsg = document.getElementById("write-msg");
  const uploadMsg = document.getElementById("upload-msg");

  function show(ann) {
    const result = document.getElementById("result");
    const player = document.getElementById("player");
    document.getElementById("result-title").textContent = ann.title;
    player.src = `/console/media/${ann.media_sha256}.mp3`;
    player.load();
    document.getElementById("result-info").textContent = Radio.t("ann.length", {
      s: Radio.number(ann.duration_s, 1),
    });
    document.getElementById("schedule-link").href =
      `/console/calendar?announcement=${ann.id}#schedule`;
    result.hidden = false;
    result.setAttribute("data-announcement", ann.id);
    document.getElementById("result-h").focus({ preventScroll: false });
  }

  async function busy(button, work) {
    button.disabled = true;
    button.setAttribute("aria-busy", "true");
    try {
      await work();
    } finally {
      button.disabled = false;
      button.removeAttribute("aria-busy");
    }
  }

  document.getElementById("preview-btn").addEventListener("click", async (event) => {
    const text = document.getElementById("ann-text").value.trim();
    if (!text) {
      Radio.say(writeMsg, Radio.t("ann.need_text"), "error");
      return;
    }
    await busy(event.currentTarget, async () => {
      try {
        const reading = await Radio.api("POST", "/api/v1/speech/preview", { text });
        document.getElementById("reading-text").textContent = reading.normalized_text;
        // Readings fixed inline ([[UBND|ủy ban nhân dân]]) are listed as "UBND → ủy ban…".
        const fixed = document.getElementById("reading-overrides");
        const list = reading.overrides.map((o) => `${o.shown} → ${o.reading}`).join("; ");
        fixed.textContent = list ? Radio.t("ann.overrides", { list }) : "";
        fixed.hidden = !list;
        document.getElementById("reading").hidden = false;
        Radio.say(writeMsg, "", null);
      } catch (err) {
        Radio.say(writeMsg, err.message, "error");
      }
    });
  });

  write.addEventListener("submit", async (event) => {
    event.preventDefault();
    const title = document.getElementById("ann-title").value.trim();
    const text = document.getElementById("ann-text").value.trim();
    Radio.say(writeMsg, Radio.t("ann.rendering"), null);
    await busy(document.getElementById("render-btn"), async () => {
      try {
        const category = document.getElementById("ann-category").value;
        const ann = await Radio.api("POST", "/api/v1/announcements", { title, text, category });
        document.getElementById("reading-text").textContent = ann.normalized_text;
        document.getElementById("reading").hidden = false;
        Radio.say(writeMsg, Radio.t("ann.rendered"), "ok");
        show(ann);
      } catch (err) {
        Radio.say(writeMsg, err.message, "error");
      }
    });
  });

  upload.addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = new FormData();
    form.append("title", document.getElementById("up-title").value.trim());
    form.append("file", document.getElementById("up-file").files[0]);
    form.append("category", document.getElementById("up-category").value);
    Radio.say(uploadMsg, Radio.t("ann.uploading"), null);
    await busy(document.getElementById("upload-btn"), async () => {
      try {
        const ann = await Radio.api("POST", "/api/v1/announcements/upload", form);
        Radio.say(uploadMsg, Radio.t("ann.uploaded"), "ok");
        show(ann);
      } catch (err) {
        Radio.say(uploadMsg, err.message, "error");
      }
    });
  });
})();
