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
    if (command === "volume") args.level = Number(document.getElementById("volume").value);
    if (command === "test_tone") args.duration_ms = 3000;
    button.disabled = true;
    Radio.say(msg, Radio.t("command.sending"), null);
    try {
      const made = await Radio.api("POST", "/api/v1/commands", { command, args, nodes: [node] });
      const state = await follow(made.id);
      const kind = state === "ok" ? "ok" : "error";
      Radio.say(msg, Radio.t("command.result", { state: Radio.t(`command.state_${state}`) }), kind);
    } catch (err) {
      Radio.say(msg, err.message, "error");
    } finally {
      button.disabled = false;
    }
  });
})();
