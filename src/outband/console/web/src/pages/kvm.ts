// The device's screen, keyboard and mouse in noVNC.  The console completes AMT's redirection login and KVM
// channel opening, then the socket carries plain RFB, which noVNC speaks.

import RFB from "@novnc/novnc";
import { download, field, fill, h } from "../dom";
import { P, can } from "../session";
import { busy, notify } from "../ui";
import type { DeviceContext } from "./device";
import { openSocket, refusalText, type Refusal } from "./session";

const K = {
  ctrl: 0xffe3, alt: 0xffe9, shift: 0xffe1, meta: 0xffeb, tab: 0xff09, escape: 0xff1b, enter: 0xff0d,
  del: 0xffff, f1: 0xffbe, f2: 0xffbf, f4: 0xffc1, print: 0xff61,
};

const MACROS: [string, string, number[]][] = [
  ["ctrl-alt-del", "Ctrl+Alt+Del", []],
  ["ctrl-alt-f1", "Ctrl+Alt+F1", [K.ctrl, K.alt, K.f1]],
  ["ctrl-alt-f2", "Ctrl+Alt+F2", [K.ctrl, K.alt, K.f2]],
  ["alt-tab", "Alt+Tab", [K.alt, K.tab]],
  ["alt-f4", "Alt+F4", [K.alt, K.f4]],
  ["meta", "Windows key", [K.meta]],
  ["print", "Print Screen", [K.print]],
  ["escape", "Escape", [K.escape]],
  ["enter", "Enter", [K.enter]],
];

export function kvmTab(panel: HTMLElement, context: DeviceContext): () => void {
  const device = context.device;
  const status = h("p", { class: "session-status", role: "status", "aria-live": "polite" }, "Not connected.");
  const help = h("div", { class: "consent-help", hidden: true });
  const connect = h("button", { type: "button", class: "primary", "data-kvm": "connect" }, "Connect");
  const disconnect = h("button", { type: "button", class: "secondary", disabled: true }, "Disconnect");
  const macro = h("select", { name: "kvm-macro", disabled: true },
    MACROS.map(([value, label]) => h("option", { value }, label)));
  const sendMacro = h("button", { type: "button", class: "secondary", disabled: true }, "Send keys");
  const ctrlAltDel = h("button", { type: "button", class: "secondary", disabled: true }, "Ctrl+Alt+Del");
  const scale = h("input", { type: "checkbox", id: "kvm-scale", checked: true });
  const fullScreen = h("button", { type: "button", class: "secondary", disabled: true }, "Full screen");
  const screenshot = h("button", { type: "button", class: "secondary", disabled: true }, "Screenshot");
  const screen = h("div", { class: "kvm-screen", role: "application", "aria-label": `Screen of ${device.name}`,
    "aria-roledescription": "remote screen", tabindex: "0" });
  screen.addEventListener("focus", (event) => {
    if (event.target === screen) rfb?.focus();
  });
  fill(panel,
    h("h2", null, "Remote screen (KVM)"),
    h("div", { class: "toolbar", role: "toolbar", "aria-label": "Remote screen" },
      connect, disconnect, ctrlAltDel, field("Keys", macro), sendMacro,
      h("span", { class: "field checkbox" }, scale, h("label", { for: "kvm-scale" }, "Scale to fit")),
      fullScreen, screenshot),
    status, help, screen,
    h("p", { class: "hint" }, "Click the screen (or tab to it) to type on the device; keys go to the device while it "
      + "has the focus."));

  let rfb: RFB | null = null;
  const controls = [disconnect, macro, sendMacro, ctrlAltDel, fullScreen, screenshot];
  const setConnected = (on: boolean): void => {
    connect.disabled = on;
    for (const control of controls) control.disabled = !on;
    panel.dataset.session = on ? "open" : "closed";
  };

  connect.addEventListener("click", () => void busy(connect, async () => {
    help.hidden = true;
    status.textContent = "Asking the console for a session…";
    let socket: WebSocket;
    try {
      socket = await openSocket(device.id, "kvm", (text) => { status.textContent = text; });
    } catch (refusal) {
      status.textContent = `Could not connect: ${refusalText(refusal)}`;
      showHelp(refusal as Refusal);
      return;
    }
    rfb = new RFB(screen, socket, { shared: true });
    rfb.scaleViewport = scale.checked;
    rfb.background = "#111";
    rfb.addEventListener("connect", () => {
      status.textContent = `Connected to ${device.name}.`;
      setConnected(true);
      rfb?.focus();
    });
    rfb.addEventListener("disconnect", (event) => {
      const clean = (event as CustomEvent<{ clean: boolean }>).detail?.clean;
      status.textContent = clean ? "Disconnected." : "The session ended unexpectedly.";
      setConnected(false);
      rfb = null;
    });
  }));
  disconnect.addEventListener("click", () => rfb?.disconnect());
  ctrlAltDel.addEventListener("click", () => {
    rfb?.sendCtrlAltDel();
    rfb?.focus();
  });
  sendMacro.addEventListener("click", () => {
    const chosen = MACROS.find(([value]) => value === macro.value);
    if (!rfb || !chosen) return;
    if (!chosen[2].length) rfb.sendCtrlAltDel();
    for (const keysym of chosen[2]) rfb.sendKey(keysym, null, true);
    for (const keysym of [...chosen[2]].reverse()) rfb.sendKey(keysym, null, false);
    rfb.focus();
  });
  scale.addEventListener("change", () => {
    if (rfb) rfb.scaleViewport = scale.checked;
  });
  fullScreen.addEventListener("click", () => void screen.requestFullscreen().catch(() =>
    notify("The browser refused full screen.", "error")));
  screenshot.addEventListener("click", () => {
    rfb?.toBlob((blob) => {
      if (blob) download(`${device.name}-screen-${new Date().toISOString().replace(/[:.]/g, "-")}.png`, blob);
    }, "image/png");
  });

  function showHelp(refusal: Refusal): void {
    if (refusal?.code !== "consent" || !can(P.consent)) return;
    const area = h("div", { class: "job-area" });
    const ask = h("button", { type: "button", class: "primary" }, "Request consent");
    const code = h("input", { name: "kvm-consent-code", inputmode: "numeric", pattern: "[0-9]{6}", maxlength: "6",
      autocomplete: "off", required: true });
    const send = h("button", { type: "submit", class: "primary" }, "Send the code and connect");
    const form = h("form", { class: "inline-form", hidden: true }, field("Code shown on the device", code), send);
    ask.addEventListener("click", () => void busy(ask, async () => {
      const outcome = await context.run("consent", { action: "start" }, area);
      if (outcome?.status === "succeeded") {
        form.hidden = false;
        code.focus();
      } else if (outcome) {
        notify(`The consent request failed: ${outcome.error ?? outcome.reason}`, "error");
      }
    }));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      void busy(send, async () => {
        const outcome = await context.run("consent", { action: "submit", code: Number(code.value) }, area);
        if (outcome?.status === "succeeded") {
          help.hidden = true;
          connect.click();
        } else if (outcome) {
          notify(`The code was not accepted: ${outcome.error ?? outcome.reason}`, "error");
        }
      });
    });
    fill(help, h("h3", null, "Consent needed"),
      h("p", null, "The device shows a six-digit code on its screen once consent is requested; the person at the "
        + "device reads it out."), ask, form, area);
    help.hidden = false;
  }

  return () => {
    rfb?.disconnect();
    rfb = null;
  };
}
