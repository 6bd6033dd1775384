// A node's command buttons: one command to this node, then its answer (or timeout) as it comes.
"use strict";

(() => {
  const box = document.getElementById("commands");
  if (!box) return;
  const msg = document.getElementById("command-msg");
  const node = box.dataset.node;
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  async function follow(id) {
    for (;;) {
      const view = await Radio.api("GET", `/api/v1/commands/${encodeURIComponent(id)}`);
      const mine = view.nodes.find((n) => n.node_id === node);
      if (view.command.done || (mine && !["pending", "in_progress"].includes(mine.state))) {
        return mine ? mine.state : "skipped";
      }
      await sleep(1000);
    }
  }

  box.addEventListener("click", async (event) => {
    const button = event.target.closest("button.command");
    if (!button) return;
    const command = button.dataset.command;
    if (command === "reboot" && !window.confirm(Radio.t("command.ask_reboot"))) return;
    const args = {};
    let named = Radio.t(`command.${command}`);
    if (command === "volume") {
      const box = document.getElementById("volume");
      const level = box.value.trim() === "" ? NaN : Number(box.value);
      if (!Number.isInteger(level) || level < 0 || level > 100) {
        Radio.say(msg, Radio.t("code.volume_level"), "error");
        box.focus();
        return;
      }
      args.level = level;
      named = Radio.t("command.volume_to", { level: String(level) });
    }
    if (command === "test_tone") args.duration_ms = 3000;
    button.disabled = true;
    Radio.say(msg, Radio.t("command.sending"), null);
    try {
      const made = await Radio.api("POST", "/api/v1/commands", { command, args, nodes: [node] });
      const state = await follow(made.id);
      const kind = state === "ok" ? "ok" : "error";
      const said = Radio.t(`command.state_${state}`);
      Radio.say(msg, Radio.t("command.result", { command: named, state: said }), kind);
    } catch (err) {
      Radio.say(msg, Radio.t("command.refused", { command: named, why: err.message }), "error");
    } finally {
      button.disabled = false;
    }
  });
})();
