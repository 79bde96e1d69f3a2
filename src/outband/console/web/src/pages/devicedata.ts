// Device tabs that show what the console read from the device: hardware inventory, event and audit logs,
// alarm clocks, and user consent.

import { get, query } from "../api";
import { download, field, fill, formatBytes, h, timeElement, toCsv } from "../dom";
import { P, can } from "../session";
import { busy, definitionList, errorBox, notify } from "../ui";
import type { DeviceContext } from "./device";

// ------------------------------------------------------------------------------------------ inventory

interface Snapshot {
  taken_at: string;
  data: Record<string, Record<string, unknown>[]>;
}

const CLASS_TITLES: [string, string][] = [
  ["CIM_Chassis", "Chassis"], ["CIM_Card", "Board"], ["CIM_BIOSElement", "BIOS"], ["CIM_Processor", "Processors"],
  ["CIM_Chip", "Chips"], ["CIM_PhysicalMemory", "Memory"], ["CIM_MediaAccessDevice", "Storage"],
  ["CIM_PhysicalPackage", "Packages"], ["CIM_SoftwareIdentity", "Firmware"], ["AMT_GeneralSettings", "AMT settings"],
  ["AMT_EthernetPortSettings", "Network ports"], ["CIM_ComputerSystemPackage", "Platform"],
];

export async function inventoryTab(panel: HTMLElement, context: DeviceContext): Promise<void> {
  const area = h("div", { class: "job-area" });
  const content = h("div");
  const refresh = can(P.inventory) ? h("button", { type: "button", class: "secondary" }, "Read inventory now") : null;
  refresh?.addEventListener("click", () => void busy(refresh, async () => {
    const outcome = await context.run("inventory", {}, area);
    if (outcome?.status === "succeeded") await show();
    else if (outcome) notify(`Inventory failed: ${outcome.error ?? outcome.reason}`, "error");
  }));
  fill(panel, h("h2", null, "Hardware inventory"), refresh, area, content);
  await show();

  async function show(): Promise<void> {
    let snapshot: Snapshot | undefined;
    try {
      [snapshot] = await get<Snapshot[]>(`/api/devices/${context.device.id}/inventory`);
    } catch (error) {
      fill(content, errorBox(error));
      return;
    }
    if (!snapshot) {
      fill(content, h("p", null, "No inventory has been read from this device yet."));
      return;
    }
    const data = snapshot.data;
    fill(content, h("p", null, "Read ", timeElement(snapshot.taken_at), "."),
      CLASS_TITLES.filter(([cls]) => data[cls]?.length).map(([cls, title]) =>
        h("section", { class: "inventory" }, h("h3", null, title),
          data[cls].map((item) => definitionList(Object.entries(item)
            .filter(([key, value]) => !key.startsWith("__") && value !== null && value !== "" && typeof value !== "object")
            .map(([key, value]) => [key, key === "Capacity" && typeof value === "number"
              ? `${formatBytes(value)} (${value})` : String(value)]))))));
  }
}

// ------------------------------------------------------------------------------------------ logs

interface LogRecord {
  seq: number;
  recorded_at: string | null;
  data: Record<string, unknown>;
}

interface LogPage {
  items: LogRecord[];
  next_before: number | null;
}

const LOG_COLUMNS: Record<"event" | "audit", [string, (r: LogRecord) => string][]> = {
  event: [
    ["Time", (r) => String(r.data.time ?? "")],
    ["Severity", (r) => severity(r.data.severity)],
    ["Source", (r) => String(r.data.entity_name ?? "")],
    ["Sensor type", (r) => String(r.data.sensor_type ?? "")],
    ["Event", (r) => `type ${r.data.event_type ?? "?"}, offset ${r.data.event_offset ?? "?"}`],
    ["Data", (r) => String(r.data.event_data ?? r.data.error ?? "")],
  ],
  audit: [
    ["Time", (r) => String(r.data.time ?? "")],
    ["Event", (r) => String(r.data.description ?? r.data.error ?? "")],
    ["By", (r) => [r.data.initiator, r.data.initiator_type].filter(Boolean).join(" ")],
    ["From", (r) => String(r.data.address ?? "")],
    ["Id", (r) => `${r.data.app_id ?? "?"}.${r.data.event_id ?? "?"}`],
  ],
};

function severity(value: unknown): string {
  return { 0: "unspecified", 1: "monitor", 2: "information", 4: "OK", 8: "non-critical", 16: "critical",
    32: "non-recoverable" }[Number(value)] ?? String(value ?? "");
}

export async function logsTab(panel: HTMLElement, context: DeviceContext): Promise<void> {
  const area = h("div", { class: "job-area" });
  const kind = h("select", { name: "log-kind" }, h("option", { value: "event" }, "Event log"),
    h("option", { value: "audit" }, "Audit log"));
  const filter = h("input", { type: "search", name: "log-filter", placeholder: "Text to look for", autocomplete: "off" });
  const exportButton = h("button", { type: "button", class: "secondary" }, "Download CSV");
  const pull = can(P.logs) ? h("button", { type: "button", class: "secondary" }, "Pull logs from the device") : null;
  const count = h("p", { class: "table-status", role: "status", "aria-live": "polite" });
  const body = h("tbody");
  const head = h("thead");
  let records: LogRecord[] = [];

  pull?.addEventListener("click", () => void busy(pull, async () => {
    const outcome = await context.run("logs", {}, area);
    if (outcome?.status === "succeeded") await load();
    else if (outcome) notify(`Pulling the logs failed: ${outcome.error ?? outcome.reason}`, "error");
  }));
  kind.addEventListener("change", () => void load());
  filter.addEventListener("input", draw);
  exportButton.addEventListener("click", () => {
    const columns = LOG_COLUMNS[kind.value as "event" | "audit"];
    download(`${context.device.name}-${kind.value}-log.csv`,
      toCsv([["#", ...columns.map(([title]) => title)], ...visible().map((r) => [r.seq, ...columns.map(([, f]) => f(r))])]),
      "text/csv");
  });
  fill(panel, h("h2", null, "Logs"),
    h("div", { class: "filters" }, field("Log", kind), field("Filter", filter), exportButton, pull),
    area, count, h("div", { class: "table-wrap" }, h("table", { class: "compact logs" },
      h("caption", { class: "visually-hidden" }, "Log records, newest first"), head, body)));
  await load();

  async function load(): Promise<void> {
    records = [];
    try {
      let before: number | null = null;
      do {
        const page: LogPage = await get<LogPage>(`/api/devices/${context.device.id}/logs${query({ kind: kind.value,
          limit: 1000, before })}`);
        records.push(...page.items);
        before = page.next_before;
      } while (before !== null && records.length < 10_000);
    } catch (error) {
      fill(body, h("tr", null, h("td", null, errorBox(error))));
      return;
    }
    draw();
  }

  function visible(): LogRecord[] {
    const needle = filter.value.trim().toLowerCase();
    const columns = LOG_COLUMNS[kind.value as "event" | "audit"];
    return needle ? records.filter((r) => columns.some(([, f]) => f(r).toLowerCase().includes(needle))) : records;
  }

  function draw(): void {
    const columns = LOG_COLUMNS[kind.value as "event" | "audit"];
    fill(head, h("tr", null, h("th", { scope: "col" }, "#"), columns.map(([title]) => h("th", { scope: "col" }, title))));
    const shown = visible();
    count.textContent = records.length ? `${shown.length} of ${records.length} records` : "No records pulled yet.";
    fill(body, shown.slice(0, 2000).map((r) => h("tr", null, h("td", null, String(r.seq)),
      columns.map(([, f]) => h("td", null, f(r))))));
  }
}

// ------------------------------------------------------------------------------------------ alarms

interface Alarm {
  id: string;
  name: string;
  start: string | null;
  interval: string | null;
  delete_on_completion: boolean | null;
}

export function alarmsTab(panel: HTMLElement, context: DeviceContext): void {
  const area = h("div", { class: "job-area" });
  const list = h("div");
  if (!can(P.alarms)) {
    fill(panel, h("h2", null, "Alarm clocks"),
      h("p", { class: "hint" }, "Alarm clocks are read from the device by an operation your role does not allow."));
    return;
  }
  const load = h("button", { type: "button", class: "secondary" }, "Read alarms");
  const name = h("input", { name: "alarm-name", required: true, maxlength: "32", pattern: "[ -~]+" });
  const start = h("input", { name: "alarm-start", type: "datetime-local", required: true, step: "60" });
  const interval = h("input", { name: "alarm-interval", type: "number", min: "0", value: "0" });
  const add = h("button", { type: "submit", class: "primary" }, "Add alarm");
  const form = h("form", { class: "inline-form" }, field("Name", name), field("First wake-up (your time)", start),
    field("Repeat every (minutes, 0: once)", interval), add);

  const show = (result: Record<string, unknown> | null | undefined): void => {
    const alarms = (result?.alarms as Alarm[] | undefined) ?? [];
    fill(list, alarms.length ? h("table", { class: "compact" },
      h("caption", null, "Alarm clocks on the device"),
      h("thead", null, h("tr", null, ["Name", "Starts", "Repeats", ""].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", null, alarms.map((alarm) => {
        const remove = h("button", { type: "button", class: "danger small" }, `Delete ${alarm.name}`);
        remove.addEventListener("click", () => void busy(remove, async () => {
          const outcome = await context.run("alarms", { action: "delete", name: alarm.id }, area);
          show(outcome?.result);
        }));
        return h("tr", null, h("td", null, alarm.name), h("td", null, alarm.start ?? "—"),
          h("td", null, alarm.interval ?? "once"), h("td", null, remove));
      }))) : h("p", null, "No alarm clocks are set."));
  };
  load.addEventListener("click", () => void busy(load, async () => show((await context.run("alarms",
    { action: "list" }, area))?.result)));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    void busy(add, async () => {
      const when = new Date(start.value);
      when.setSeconds(0, 0);
      const outcome = await context.run("alarms", { action: "add", name: name.value, start: when.toISOString(),
        interval_minutes: Number(interval.value) || 0 }, area);
      if (outcome?.status === "succeeded") show(outcome.result);
      else if (outcome) notify(`Adding the alarm failed: ${outcome.error ?? outcome.reason}`, "error");
    });
  });
  fill(panel, h("h2", null, "Alarm clocks"),
    h("p", null, "An alarm clock powers the device on at a set time, once or repeatedly."), load, list,
    h("h3", null, "New alarm"), form, area);
}

// ------------------------------------------------------------------------------------------ consent

export function consentTab(panel: HTMLElement, context: DeviceContext): void {
  const area = h("div", { class: "job-area" });
  const state = h("p", { role: "status", "aria-live": "polite" });
  const sections: HTMLElement[] = [h("h2", null, "User consent"),
    h("p", null, "When the device's policy asks for consent (KVM always does, by default), the person at the device "
      + "reads out a code that appears on its screen; enter it here to start remote control.")];
  if (can(P.consent)) {
    const startButton = h("button", { type: "button", class: "primary" }, "Request consent (show a code)");
    const cancel = h("button", { type: "button", class: "secondary" }, "Withdraw consent");
    const code = h("input", { name: "consent-code", inputmode: "numeric", pattern: "[0-9]{6}", maxlength: "6",
      autocomplete: "off", required: true });
    const submit = h("button", { type: "submit", class: "primary" }, "Send the code");
    const form = h("form", { class: "inline-form" }, field("Code shown on the device", code), submit);
    const report = (outcome: { status: string; result: Record<string, unknown> | null; error: string | null } | null,
                    what: string): void => {
      if (outcome?.status === "succeeded") state.textContent = `${what}: consent is now ${String(outcome.result?.state ?? "?").replace("_", " ")}.`;
      else if (outcome) state.textContent = `${what} failed: ${outcome.error ?? "unknown error"}`;
    };
    startButton.addEventListener("click", () => void busy(startButton, async () =>
      report(await context.run("consent", { action: "start" }, area), "Request")));
    cancel.addEventListener("click", () => void busy(cancel, async () =>
      report(await context.run("consent", { action: "cancel" }, area), "Withdraw")));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      void busy(submit, async () => report(await context.run("consent", { action: "submit", code: Number(code.value) },
        area), "Code"));
    });
    sections.push(h("div", { class: "button-row" }, startButton, cancel), form, state, area);
  } else {
    sections.push(h("p", { class: "hint" }, "Your role does not allow asking for consent."));
  }
  fill(panel, ...sections);
}
