// Shared pieces: announcements, confirmation dialogs, tabs, state badges, and live job progress.

import { ApiError, get, type Counts, type Device, type Job, type JobDetail, type JobDevice } from "./api";
import { fill, formatTime, h, uid, type Child } from "./dom";

// ------------------------------------------------------------------------------------------ announcements

/** Tell the user something: shown in the notice area and read out by screen readers. */
export function notify(message: string, kind: "info" | "error" = "info"): void {
  const area = document.getElementById("notices");
  if (!area) return;
  const notice = h("div", { class: `notice ${kind}`, role: kind === "error" ? "alert" : "status" },
    h("span", null, message),
    h("button", { type: "button", class: "link", "aria-label": "Dismiss", onclick: () => notice.remove() }, "×"));
  area.append(notice);
  setTimeout(() => notice.remove(), kind === "error" ? 15_000 : 6_000);
}

export function errorText(error: unknown): string {
  if (error instanceof ApiError) return error.message;
  if (error instanceof Error) return error.message;
  return String(error);
}

/** Run an action from a button: the button is disabled meanwhile and failures are announced. */
export async function busy<T>(button: HTMLButtonElement | null, action: () => Promise<T>): Promise<T | undefined> {
  if (button) button.disabled = true;
  try {
    return await action();
  } catch (error) {
    notify(errorText(error), "error");
    return undefined;
  } finally {
    if (button) button.disabled = false;
  }
}

export function errorBox(error: unknown): HTMLElement {
  return h("p", { class: "error-box", role: "alert" }, errorText(error));
}

// ------------------------------------------------------------------------------------------ dialogs

/** Ask before something that cannot be undone; resolves true when confirmed. */
export function confirmAction(title: string, message: string, confirmLabel: string): Promise<boolean> {
  return new Promise((resolve) => {
    const titleId = uid("dialog-title");
    const dialog = h("dialog", { "aria-labelledby": titleId, class: "confirm" },
      h("h2", { id: titleId }, title),
      h("p", null, message),
      h("form", { method: "dialog", class: "actions" },
        h("button", { type: "submit", value: "cancel", class: "secondary" }, "Cancel"),
        h("button", { type: "submit", value: "confirm", class: "danger" }, confirmLabel)));
    dialog.addEventListener("close", () => {
      resolve(dialog.returnValue === "confirm");
      dialog.remove();
    });
    document.body.append(dialog);
    dialog.showModal();
  });
}

// ------------------------------------------------------------------------------------------ tabs

export interface Tab {
  id: string;
  label: string;
  render: (panel: HTMLElement) => Promise<(() => void) | void> | (() => void) | void;
}

/** The ARIA tabs pattern: arrow keys move between tabs, Home/End jump, the panel follows the selection. */
export function tabs(tabList: Tab[], selected: string, onSelect: (id: string) => void): HTMLElement {
  const listId = uid("tabs");
  const panel = h("div", { role: "tabpanel", class: "tabpanel", tabindex: "0" });
  let leave: (() => void) | void = undefined;
  const buttons = tabList.map((tab) => h("button", {
    type: "button", role: "tab", id: `${listId}-${tab.id}`, "aria-controls": `${listId}-panel`,
    "data-tab": tab.id, onclick: () => select(tab.id, true),
  }, tab.label));
  panel.id = `${listId}-panel`;

  async function select(id: string, focus: boolean): Promise<void> {
    const tab = tabList.find((t) => t.id === id) ?? tabList[0];
    for (const button of buttons) {
      const on = button.dataset.tab === tab.id;
      button.setAttribute("aria-selected", String(on));
      button.tabIndex = on ? 0 : -1;
      if (on && focus) button.focus();
    }
    panel.setAttribute("aria-labelledby", `${listId}-${tab.id}`);
    if (leave) leave();
    leave = undefined;
    fill(panel);
    onSelect(tab.id);
    try {
      leave = await tab.render(panel);
    } catch (error) {
      fill(panel, errorBox(error));
    }
  }

  const list = h("div", {
    role: "tablist", class: "tablist", "aria-label": "Device sections",
    onkeydown: (event: KeyboardEvent) => {
      const index = buttons.indexOf(document.activeElement as HTMLButtonElement);
      if (index < 0) return;
      const next = { ArrowRight: index + 1, ArrowLeft: index - 1, Home: 0, End: buttons.length - 1 }[event.key];
      if (next === undefined) return;
      event.preventDefault();
      void select(buttons[(next + buttons.length) % buttons.length].dataset.tab!, true);
    },
  }, buttons);
  const container = h("div", { class: "tabs" }, list, panel);
  void select(selected, false);
  (container as HTMLElement & { leave?: () => void }).leave = () => {
    if (leave) leave();
  };
  return container;
}

// ------------------------------------------------------------------------------------------ badges

export function powerBadge(power: string): HTMLElement {
  const label = { on: "On", off_soft: "Off", off_hard: "Off (hard)", sleep_light: "Asleep", sleep_deep: "Asleep (deep)",
    hibernate: "Hibernating", unknown: "Unknown" }[power] ?? power.replace(/_/g, " ");
  const tone = power === "on" ? "good" : power.startsWith("off") ? "muted" : power === "unknown" ? "unknown" : "warn";
  return h("span", { class: `badge ${tone}` }, label);
}

function reachBadge(reachable: boolean | null): HTMLElement {
  if (reachable === null) return h("span", { class: "badge unknown" }, "Not checked");
  return reachable ? h("span", { class: "badge good" }, "Reachable") : h("span", { class: "badge bad" }, "Unreachable");
}

/** Whether the console can reach the device now: for a CIRA device, whether its tunnel is up. */
export function reachabilityBadge(device: Device): HTMLElement {
  const cira = device.cira;
  if (!cira) return reachBadge(device.state.reachable);
  if (cira.online) {
    return h("span", { class: "badge good cira", title: `CIRA tunnel since ${formatTime(cira.connected_since)}` },
      "Connected");
  }
  const since = cira.disconnected_at ? `since ${formatTime(cira.disconnected_at)}` : "never dialled in";
  return h("span", { class: "badge bad cira", title: `CIRA: offline, ${since}` }, "Offline");
}

export function statusBadge(status: string): HTMLElement {
  const tone = { succeeded: "good", done: "good", ready: "good", ok: "good", failed: "bad", error: "bad", denied: "bad",
    cancelled: "muted", running: "busy", serving: "busy", booting: "busy", connecting: "busy", uploading: "busy",
    pending: "unknown" }[status] ?? "unknown";
  return h("span", { class: `badge ${tone}` }, status);
}

export function definitionList(rows: [string, Child][]): HTMLElement {
  return h("dl", { class: "facts" }, rows.map(([term, value]) => [h("dt", null, term), h("dd", null, value)]));
}

// ------------------------------------------------------------------------------------------ jobs

export interface JobWatch {
  close: () => void;
}

interface JobHandlers {
  onJob: (job: { status: string; counts: Counts; total: number; waiting_offline?: number }) => void;
  onDevice?: (event: DeviceEvent) => void;
  /** A device will be tried again: ``reason`` says why (``offline``: a CIRA device away). */
  onRetry?: (event: { device_id: number; reason: string | null; counts: Counts }) => void;
}

export interface DeviceEvent {
  device_id: number;
  device_name: string;
  status: string;
  error: string | null;
  reason: string | null;
  result: Record<string, unknown> | null;
}

const FINISHED = new Set(["succeeded", "failed", "cancelled"]);

/** Follow a job's progress over its Server-Sent Events (polling the job if the stream cannot be opened). */
export function followJob(jobId: number, handlers: JobHandlers): JobWatch {
  let closed = false;
  let timer: number | undefined;
  const source = new EventSource(`/api/jobs/${jobId}/events`);
  source.addEventListener("job", (event) => {
    const data = JSON.parse((event as MessageEvent<string>).data);
    handlers.onJob(data);
    if (FINISHED.has(data.status)) source.close();
  });
  source.addEventListener("device", (event) => handlers.onDevice?.(JSON.parse((event as MessageEvent<string>).data)));
  source.addEventListener("retry", (event) => handlers.onRetry?.(JSON.parse((event as MessageEvent<string>).data)));
  source.addEventListener("lagged", () => void poll());
  source.onerror = () => {
    if (source.readyState === EventSource.CLOSED && !closed) void poll();
  };

  async function poll(): Promise<void> {
    if (closed) return;
    try {
      const job = await get<JobDetail>(`/api/jobs/${jobId}`);
      handlers.onJob(job);
      job.devices.filter((d) => FINISHED.has(d.status) && d.device_id !== null)
        .forEach((d) => handlers.onDevice?.(deviceEvent(d)));
      if (FINISHED.has(job.status)) return;
    } catch {
      // keep trying: the console may be restarting
    }
    if (!closed && source.readyState === EventSource.CLOSED) timer = window.setTimeout(() => void poll(), 1000);
  }

  return {
    close: () => {
      closed = true;
      source.close();
      if (timer) clearTimeout(timer);
    },
  };
}

function deviceEvent(row: JobDevice): DeviceEvent {
  return { device_id: row.device_id ?? 0, device_name: row.device_name, status: row.status, error: row.error,
    reason: row.reason, result: row.result };
}

/** A job's progress as a bar and counts, and (``perDevice``) a live list of each device's outcome. */
export function jobProgress(job: Job, options: { perDevice?: boolean; onFinished?: (status: string) => void } = {}
): { element: HTMLElement; watch: JobWatch } {
  const bar = h("progress", { max: String(Math.max(job.total, 1)), value: "0", "aria-label": `Progress of job ${job.id}` });
  const summary = h("p", { class: "job-summary", role: "status", "aria-live": "polite" });
  const rows = new Map<number, HTMLTableRowElement>();
  const body = h("tbody");
  const table = options.perDevice ? h("div", { class: "table-wrap" }, h("table", { class: "compact" },
    h("caption", { class: "visually-hidden" }, `Devices of job ${job.id}`),
    h("thead", null, h("tr", null, h("th", { scope: "col" }, "Device"), h("th", { scope: "col" }, "Outcome"),
      h("th", { scope: "col" }, "Detail"))), body)) : null;
  const element = h("section", { class: "job-progress", "aria-label": `Job ${job.id}` },
    h("h3", null, h("a", { href: `/jobs/${job.id}` }, `Job ${job.id}: ${describeOperation(job)}`)), bar, summary, table);
  let finished = false;
  let backfilled = false;
  // CIRA devices the job waits for: counted by the API at first (and after a lag), then followed by retry events
  const away = new Set<number>();
  let waiting = job.waiting_offline ?? 0;
  let last: { status: string; counts: Counts; total: number } = job;

  /** Devices that finished before the stream was subscribed (or while it lagged) come from the job's rows. */
  async function backfill(): Promise<void> {
    let after = 0;
    try {
      for (;;) {
        const detail = await get<JobDetail>(`/api/jobs/${job.id}?after=${after}`);
        detail.devices.filter((d) => FINISHED.has(d.status) && d.device_id !== null && !rows.has(d.device_id))
          .forEach((d) => showDevice(deviceEvent(d)));
        if (detail.next_after === null) return;
        after = detail.next_after;
      }
    } catch {
      // the live events keep coming; a later backfill fills what this one missed
    }
  }

  function showDevice(event: DeviceEvent): void {
    let row = rows.get(event.device_id);
    if (!row) {
      row = h("tr");
      rows.set(event.device_id, row);
      body.append(row);
    }
    row.dataset.status = event.status;
    fill(row, h("th", { scope: "row" }, h("a", { href: `/devices/${event.device_id}` }, event.device_name)),
      h("td", null, statusBadge(event.status)), h("td", null, event.error ?? summarizeResult(event.result)));
  }

  const watch = followJob(job.id, {
    onJob: (state) => {
      const { status, counts, total } = state;
      last = state;
      if (state.waiting_offline !== undefined) waiting = state.waiting_offline;
      if (options.perDevice && !backfilled) {
        backfilled = true;
        void backfill();
      }
      const done = counts.succeeded + counts.failed + counts.cancelled;
      bar.max = Math.max(total, 1);
      bar.value = done;
      summarize(status, counts, total, done);
      if (!(options.perDevice && FINISHED.has(status))) element.dataset.status = status;
      if (FINISHED.has(status) && !finished) {
        finished = true;
        if (options.perDevice) {
          void backfill().then(() => {
            element.dataset.status = status;
            options.onFinished?.(status);
          });
          return;
        }
        options.onFinished?.(status);
      }
    },
    onDevice: (event) => {
      if (away.delete(event.device_id)) waiting = away.size;
      if (options.perDevice) showDevice(event);
    },
    onRetry: (event) => {
      if (event.reason === "offline") away.add(event.device_id);
      else away.delete(event.device_id);
      waiting = away.size;
      last = { ...last, counts: event.counts };  // the device went back to pending
      const { status, counts, total } = last;
      summarize(status, counts, total, counts.succeeded + counts.failed + counts.cancelled);
    },
  });

  function summarize(status: string, counts: Counts, total: number, done: number): void {
    const note = waiting && !FINISHED.has(status)
      ? `; waiting for ${waiting} CIRA device${waiting === 1 ? "" : "s"} to dial in` : "";
    summary.replaceChildren(statusBadge(status), ` ${done} of ${total} done: ${counts.succeeded} succeeded, `
      + `${counts.failed} failed, ${counts.cancelled} cancelled, ${counts.running} running, ${counts.pending} pending`
      + note);
  }
  return { element, watch };
}

export function describeOperation(job: { operation: string; params: Record<string, unknown> }): string {
  const params = job.params;
  if (job.operation === "power") return `power ${String(params.action ?? "")}`.replace("_", " ");
  if (job.operation === "boot") return `next boot: ${String(params.device ?? "")}`;
  if (job.operation === "consent") return `consent ${String(params.action ?? "")}`;
  if (job.operation === "alarms") return `alarms ${String(params.action ?? "")}`;
  return job.operation;
}

export function summarizeResult(result: Record<string, unknown> | null): string {
  if (!result) return "";
  if (typeof result.power === "string") return `power: ${result.power}`;
  return Object.entries(result).filter(([, v]) => typeof v !== "object")
    .slice(0, 4).map(([k, v]) => `${k}: ${String(v)}`).join(", ");
}
