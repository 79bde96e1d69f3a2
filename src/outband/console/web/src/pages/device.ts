// One device: a header with its state and tabs for everything the console can do with it.

import { del, get, operate, patch, type Device, type JobDetail, type JobDevice } from "../api";
import { field, fill, h, timeElement, type Child } from "../dom";
import { navigate, remember, type Cleanup } from "../router";
import { P, can } from "../session";
import {
  busy, confirmAction, definitionList, errorBox, jobProgress, notify, powerBadge, reachabilityBadge, tabs, type JobWatch,
  type Tab,
} from "../ui";
import { alarmsTab, consentTab, inventoryTab, logsTab } from "./devicedata";
import { historyChart, tunnelHistory } from "./history";
import { iderTab } from "./ider";
import { kvmTab } from "./kvm";
import { solTab } from "./sol";

export interface DeviceContext {
  device: Device;
  /** Fetch the device again and redraw the header (after an operation changed its state). */
  refresh: () => Promise<Device>;
  /** Run an operation on this device, show its progress in ``where``, resolve with its outcome. */
  run: (operation: string, params: unknown, where: HTMLElement) => Promise<JobDevice | null>;
}

export async function devicePage(main: HTMLElement, params: string[]): Promise<Cleanup> {
  const id = Number(params[0]);
  let device: Device;
  try {
    device = await get<Device>(`/api/devices/${id}`);
  } catch (error) {
    fill(main, h("h1", null, "Device"), errorBox(error));
    return () => undefined;
  }
  const watches: JobWatch[] = [];
  const header = h("div", { class: "page-head device-head" });
  const context: DeviceContext = {
    device,
    refresh: async () => {
      context.device = device = await get<Device>(`/api/devices/${id}`);
      drawHeader();
      return device;
    },
    run: (operation, operationParams, where) => runOnDevice(id, operation, operationParams, where, watches),
  };

  function drawHeader(): void {
    fill(header,
      h("p", { class: "breadcrumb" }, h("a", { href: "/" }, "Fleet"), " / "),
      h("h1", null, device.name),
      h("p", { class: "device-state", "aria-live": "polite" },
        h("span", { class: "host" }, device.host), " ", powerBadge(device.state.power), " ",
        reachabilityBadge(device)));
  }
  drawHeader();

  const redirect = can(P.redirect);
  const all: (Tab & { shown: boolean })[] = [
    { id: "summary", label: "Summary", shown: true, render: (panel) => summaryTab(panel, context) },
    { id: "power", label: "Power & boot", shown: true, render: (panel) => powerTab(panel, context) },
    { id: "inventory", label: "Hardware", shown: true, render: (panel) => inventoryTab(panel, context) },
    { id: "logs", label: "Logs", shown: true, render: (panel) => logsTab(panel, context) },
    { id: "alarms", label: "Alarm clocks", shown: true, render: (panel) => alarmsTab(panel, context) },
    { id: "consent", label: "Consent", shown: true, render: (panel) => consentTab(panel, context) },
    { id: "settings", label: "Settings", shown: true, render: (panel) => settingsTab(panel, context) },
    { id: "sol", label: "Serial console", shown: redirect, render: (panel) => solTab(panel, context) },
    { id: "kvm", label: "Remote screen", shown: redirect, render: (panel) => kvmTab(panel, context) },
    { id: "ider", label: "Boot from image", shown: redirect, render: (panel) => iderTab(panel, context) },
  ];
  const shown = all.filter((tab) => tab.shown);
  const wanted = shown.some((tab) => tab.id === params[1]) ? params[1] : "summary";
  const view = tabs(shown, wanted, (tabId) => remember(tabId === "summary" ? `/devices/${id}` : `/devices/${id}/${tabId}`));
  fill(main, header, view);
  return () => {
    (view as HTMLElement & { leave?: () => void }).leave?.();
    watches.forEach((w) => w.close());
  };
}

async function runOnDevice(deviceId: number, operation: string, params: unknown, where: HTMLElement,
                           watches: JobWatch[]): Promise<JobDevice | null> {
  const job = await operate(operation, { devices: [deviceId] }, params);
  return new Promise((resolve) => {
    const { element, watch } = jobProgress(job, {
      onFinished: async () => {
        try {
          const detail = await get<JobDetail>(`/api/jobs/${job.id}`);
          resolve(detail.devices[0] ?? null);
        } catch {
          resolve(null);
        }
      },
    });
    watches.push(watch);
    fill(where, element);
  });
}

// ------------------------------------------------------------------------------------------ summary

async function summaryTab(panel: HTMLElement, context: DeviceContext): Promise<void> {
  const device = context.device;
  const state = device.state;
  const refreshArea = h("div", { class: "job-area" });
  const refresh = can(P.power) ? h("button", { type: "button", class: "secondary" }, "Refresh state") : null;
  refresh?.addEventListener("click", () => void busy(refresh, async () => {
    const outcome = await context.run("power", { action: "state" }, refreshArea);
    if (outcome?.status === "succeeded") {
      await context.refresh();
      await summaryTab(panel, context);
    }
  }));
  fill(panel,
    h("h2", null, "Summary"),
    definitionList([
      ["Power", powerBadge(state.power)],
      ["Reachability", reachabilityBadge(device)],
      ["Firmware (AMT)", state.amt_version ?? "unknown"],
      ["Provisioning mode", { acm: "Admin control mode", ccm: "Client control mode", pre: "Not provisioned",
        in: "Provisioning" }[state.provisioning_mode ?? ""] ?? "unknown"],
      ["Address", `${device.host} (${device.use_tls ? `TLS, port ${device.tls_port}` : `port ${device.http_port}`})`],
      ["Reached", device.cira ? "through CIRA (it dials the console)" : "directly"],
      ...ciraFacts(device),
      ["UUID", state.uuid ?? "unknown"],
      ["Last seen", timeElement(state.last_seen_at)],
      ["Last checked", timeElement(state.last_checked_at)],
      ["Last error", state.last_error ?? "none"],
      ["Tags", device.tags.join(", ") || "none"],
      ["Group", device.group ?? "none"],
    ]),
    refresh, refreshArea,
    h("h3", null, "Reachability history"),
    await historyChart(device.id),
    device.cira ? h("h3", null, "CIRA tunnels") : null,
    device.cira ? await tunnelHistory(device.id) : null);
}

function ciraFacts(device: Device): [string, Child][] {
  const cira = device.cira;
  if (!cira) return [];
  const tunnel: Child = cira.online
    ? ["connected since ", timeElement(cira.connected_since), ` from ${cira.peer ?? "?"} to MPS node ${cira.mps_node ?? "?"}`]
    : cira.disconnected_at
      ? ["offline since ", timeElement(cira.disconnected_at), cira.last_error ? ` (${cira.last_error})` : ""]
      : "has not dialled in yet";
  return [
    ["CIRA tunnel", h("span", { class: "cira-tunnel" }, tunnel)],
    ["Last keepalive", timeElement(cira.last_keepalive)],
    ["MPS login", cira.login === "own" ? `its own (${cira.cira_username ?? ""})` : "the shared login"],
  ];
}

// ------------------------------------------------------------------------------------------ power and boot

const POWER_ACTIONS: [string, string, boolean][] = [
  ["on", "Power on", false], ["off", "Power off", true], ["soft_off", "Soft off (OS shutdown)", true],
  ["reset", "Reset", true], ["cycle", "Power cycle", true],
];

const BOOT_DEVICES: [string, string][] = [
  ["disk", "Hard disk"], ["pxe", "Network (PXE)"], ["cd", "CD/DVD"], ["bios_setup", "BIOS setup"],
  ["ider_cd", "IDE-R CD (served by the console)"], ["ider_floppy", "IDE-R floppy (served by the console)"],
];

function powerTab(panel: HTMLElement, context: DeviceContext): void {
  const area = h("div", { class: "job-area" });
  const powerSection = h("section", { "aria-labelledby": "power-title" }, h("h2", { id: "power-title" }, "Power"),
    h("p", null, "Current state: ", powerBadge(context.device.state.power)));
  if (can(P.power)) {
    powerSection.append(h("div", { class: "button-row", role: "group", "aria-label": "Power actions" },
      POWER_ACTIONS.map(([action, label, dangerous]) => {
        const button = h("button", { type: "button", class: dangerous ? "danger" : "primary", "data-power": action },
          label);
        button.addEventListener("click", () => void busy(button, async () => {
          if (dangerous && !(await confirmAction(`${label} ${context.device.name}?`,
            "Unsaved work on the machine may be lost.", label))) return;
          const outcome = await context.run("power", { action }, area);
          if (outcome?.status === "succeeded") {
            const read = await context.run("power", { action: "state" }, area);
            if (read?.status === "succeeded") await context.refresh();
            powerTab(panel, context);
            fill(area, h("p", { role: "status" }, `${label}: done. The device is now `,
              powerBadge(context.device.state.power), "."));
          } else if (outcome) {
            notify(`${label} failed: ${outcome.error ?? outcome.reason ?? "unknown error"}`, "error");
          }
        }));
        return button;
      })));
  } else {
    powerSection.append(h("p", { class: "hint" }, "Your role does not allow power actions."));
  }
  const bootSection = h("section", { "aria-labelledby": "boot-title" }, h("h2", { id: "boot-title" }, "Next boot"));
  if (can(P.boot)) {
    const deviceChoice = h("select", { name: "boot-device" },
      BOOT_DEVICES.map(([value, label]) => h("option", { value }, label)));
    const then = h("select", { name: "boot-then" },
      h("option", { value: "none" }, "Only set it (takes effect at the next boot)"),
      h("option", { value: "auto" }, "Boot now (power on, or reset if on)"));
    const sol = h("input", { type: "checkbox", name: "boot-sol", id: "boot-sol" });
    const submit = h("button", { type: "submit", class: "primary" }, "Set next boot");
    const form = h("form", { class: "inline-form" }, field("Boot from", deviceChoice), field("Then", then),
      h("div", { class: "field checkbox" }, sol, h("label", { for: "boot-sol" },
        "Show the BIOS on the serial console (SOL)")), submit);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      void busy(submit, async () => {
        const outcome = await context.run("boot", { device: deviceChoice.value, then: then.value, sol: sol.checked }, area);
        if (outcome?.status === "succeeded") notify("Next boot set.");
      });
    });
    bootSection.append(form);
  } else {
    bootSection.append(h("p", { class: "hint" }, "Your role does not allow changing the boot device."));
  }
  fill(panel, powerSection, bootSection, area);
}

// ------------------------------------------------------------------------------------------ settings

function settingsTab(panel: HTMLElement, context: DeviceContext): void {
  const device = context.device;
  const area = h("div", { class: "job-area" });
  const sections: HTMLElement[] = [];
  const features = h("section", { "aria-labelledby": "features-title" },
    h("h2", { id: "features-title" }, "Redirection features"),
    h("p", null, "Serial-over-LAN, IDE-R and KVM must be switched on in the device before the console can use them."));
  if (can(P.features)) {
    const switches = (["listener", "sol", "ider", "kvm"] as const).map((name) => {
      const choice = h("select", { name, id: `feature-${name}` }, h("option", { value: "" }, "Leave as it is"),
        h("option", { value: "on" }, "On"), h("option", { value: "off" }, "Off"));
      const label = { listener: "Redirection listener (16994/16995)", sol: "Serial-over-LAN", ider: "IDE-R",
        kvm: "KVM (remote screen)" }[name];
      return { name, choice, row: field(label, choice) };
    });
    const current = h("p", { class: "hint", "aria-live": "polite" },
      "The device reports every switch after a change.");
    const apply = h("button", { type: "submit", class: "primary" }, "Apply");
    const enableAll = h("button", { type: "button", class: "secondary" }, "Switch all on");
    const form = h("form", null, h("fieldset", { class: "grid-fields" }, h("legend", null, "Switches"),
      switches.map((s) => s.row)), h("div", { class: "button-row" }, apply, enableAll), current);
    const submit = async (wanted: Record<string, boolean | null>): Promise<void> => {
      if (Object.values(wanted).every((v) => v === null)) {
        notify("Choose On or Off for at least one switch.", "error");
        return;
      }
      const outcome = await context.run("features", wanted, area);
      if (outcome?.status !== "succeeded" || !outcome.result) return;
      const result = outcome.result;
      current.textContent = "Now: " + switches.map(({ name }) => `${name} ${result[name] ? "on" : "off"}`).join(", ") + ".";
      for (const { choice } of switches) choice.value = "";
    };
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      void busy(apply, () => submit(Object.fromEntries(switches.map(({ name, choice }) =>
        [name, choice.value === "" ? null : choice.value === "on"]))));
    });
    enableAll.addEventListener("click", () => void busy(enableAll, () =>
      submit({ listener: true, sol: true, ider: true, kvm: true })));
    features.append(form);
  } else {
    features.append(h("p", { class: "hint" }, "Your role does not allow switching features."));
  }
  sections.push(features);
  if (can(P.deviceWrite)) {
    const name = h("input", { name: "name", value: device.name, required: true, maxlength: "128" });
    const tags = h("input", { name: "tags", value: device.tags.join(", ") });
    const group = h("input", { name: "group", value: device.group ?? "" });
    const save = h("button", { type: "submit", class: "primary" }, "Save");
    const remove = h("button", { type: "button", class: "danger" }, "Remove from the console");
    const form = h("form", { class: "stacked" }, field("Name", name),
      field("Tags", tags, "Separated by commas."), field("Group", group), h("div", { class: "button-row" }, save, remove));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      void busy(save, async () => {
        await patch(`/api/devices/${device.id}`, {
          name: name.value.trim(), tags: tags.value.split(",").map((t) => t.trim()).filter(Boolean),
          group: group.value.trim() || null,
        });
        await context.refresh();
        notify("Saved.");
      });
    });
    remove.addEventListener("click", () => void busy(remove, async () => {
      if (!(await confirmAction(`Remove ${device.name}?`, "The console forgets the device and its history; the "
        + "device itself is not changed.", "Remove"))) return;
      await del(`/api/devices/${device.id}`);
      notify(`${device.name} removed.`);
      navigate("/");
    }));
    sections.push(h("section", { "aria-labelledby": "device-settings-title" },
      h("h2", { id: "device-settings-title" }, "In the console"), form));
  }
  fill(panel, ...sections, area);
}
