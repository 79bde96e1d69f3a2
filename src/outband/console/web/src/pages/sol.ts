// Serial-over-LAN in xterm.js: keystrokes go to the device's serial port, its output comes back; the page
// keeps a log of the session for download.

import "@xterm/xterm/css/xterm.css";
import { FitAddon } from "@xterm/addon-fit";
import { Terminal } from "@xterm/xterm";
import { download, fill, h } from "../dom";
import { busy, notify } from "../ui";
import type { DeviceContext } from "./device";
import { openSocket, refusalText } from "./session";

const MAX_LOG = 8 * 1024 * 1024;

export function solTab(panel: HTMLElement, context: DeviceContext): () => void {
  const device = context.device;
  const status = h("p", { class: "session-status", role: "status", "aria-live": "polite" }, "Not connected.");
  const connect = h("button", { type: "button", class: "primary", "data-sol": "connect" }, "Connect");
  const disconnect = h("button", { type: "button", class: "secondary", disabled: true }, "Disconnect");
  const sendBreak = h("button", { type: "button", class: "secondary", disabled: true }, "Send break");
  const copy = h("button", { type: "button", class: "secondary" }, "Copy selection");
  const paste = h("button", { type: "button", class: "secondary", disabled: true }, "Paste");
  const saveLog = h("button", { type: "button", class: "secondary" }, "Download session log");
  const reader = h("input", { type: "checkbox", id: "sol-reader" });
  const screen = h("div", { class: "terminal", "aria-label": `Serial console of ${device.name}`, role: "region" });
  fill(panel,
    h("h2", null, "Serial console (SOL)"),
    h("div", { class: "toolbar", role: "toolbar", "aria-label": "Serial console" },
      connect, disconnect, sendBreak, copy, paste, saveLog,
      h("span", { class: "field checkbox" }, reader, h("label", { for: "sol-reader" }, "Screen reader mode"))),
    status, screen,
    h("p", { class: "hint" }, "Keys typed in the terminal go to the device, Tab included; press Shift+Escape to move "
      + "the focus out of the terminal."));

  const term = new Terminal({ convertEol: false, cursorBlink: true, scrollback: 5000, fontSize: 14,
    fontFamily: "ui-monospace, Menlo, Consolas, 'DejaVu Sans Mono', monospace" });
  const fit = new FitAddon();
  term.loadAddon(fit);
  term.open(screen);
  fit.fit();
  const resize = new ResizeObserver(() => fit.fit());
  resize.observe(screen);
  term.attachCustomKeyEventHandler((event) => {
    if (event.type === "keydown" && event.key === "Escape" && event.shiftKey) {
      copy.focus();
      return false;
    }
    return true;
  });
  reader.addEventListener("change", () => { term.options.screenReaderMode = reader.checked; });

  let socket: WebSocket | null = null;
  const log: Uint8Array[] = [];
  let logged = 0;
  const encoder = new TextEncoder();

  const setConnected = (on: boolean): void => {
    connect.disabled = on;
    disconnect.disabled = !on;
    sendBreak.disabled = !on;
    paste.disabled = !on;
  };
  const record = (bytes: Uint8Array): void => {
    if (logged + bytes.length > MAX_LOG) return;
    log.push(bytes);
    logged += bytes.length;
  };
  const send = (text: string): void => {
    if (socket?.readyState === WebSocket.OPEN) socket.send(encoder.encode(text));
  };
  term.onData(send);
  term.onBinary((data) => {
    if (socket?.readyState === WebSocket.OPEN) socket.send(Uint8Array.from(data, (c) => c.charCodeAt(0) & 0xff));
  });

  connect.addEventListener("click", () => void busy(connect, async () => {
    status.textContent = "Asking the console for a session…";
    try {
      socket = await openSocket(device.id, "sol", (text) => { status.textContent = text; });
    } catch (refusal) {
      status.textContent = `Could not connect: ${refusalText(refusal)}`;
      return;
    }
    const opened = socket;
    status.textContent = `Connected to ${device.name}.`;
    panel.dataset.session = "open";
    setConnected(true);
    term.focus();
    opened.onmessage = (event) => {
      if (typeof event.data === "string") {
        const message = JSON.parse(event.data) as { type: string; reason?: string };
        if (message.type === "closed") status.textContent = `Session ended: ${message.reason ?? ""}`;
        return;
      }
      const bytes = new Uint8Array(event.data as ArrayBuffer);
      record(bytes);
      term.write(bytes);
    };
    opened.onclose = (event) => {
      if (socket === opened) socket = null;
      setConnected(false);
      panel.dataset.session = "closed";
      if (!status.textContent?.startsWith("Session ended")) {
        status.textContent = `Disconnected${event.reason ? `: ${event.reason}` : "."}`;
      }
    };
  }));
  disconnect.addEventListener("click", () => {
    socket?.send(JSON.stringify({ type: "close" }));
    socket?.close();
  });
  sendBreak.addEventListener("click", () => {
    socket?.send(JSON.stringify({ type: "break" }));
    notify("Break sent.");
    term.focus();
  });
  copy.addEventListener("click", async () => {
    const text = term.getSelection();
    if (!text) {
      notify("Select text in the terminal first.");
      return;
    }
    try {
      await navigator.clipboard.writeText(text);
      notify("Copied.");
    } catch {
      notify("The browser refused access to the clipboard.", "error");
    }
  });
  paste.addEventListener("click", async () => {
    try {
      send((await navigator.clipboard.readText()).replace(/\r?\n/g, "\r"));
    } catch {
      notify("The browser refused access to the clipboard; paste with Ctrl+Shift+V in the terminal.", "error");
    }
    term.focus();
  });
  saveLog.addEventListener("click", () => {
    const stamp = new Date().toISOString().replace(/[:.]/g, "-");
    download(`${device.name}-sol-${stamp}.log`, new Blob(log as BlobPart[], { type: "text/plain" }));
  });

  return () => {
    resize.disconnect();
    socket?.close();
    term.dispose();
  };
}
