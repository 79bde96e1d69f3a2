// Jobs (operations on devices, with their progress) and schedules (operations repeated on a cron timetable).

import { del, get, patch, post, query, type Job, type JobDetail } from "../api";
import { field, fill, h, timeElement } from "../dom";
import type { Cleanup } from "../router";
import { P, can } from "../session";
import { busy, confirmAction, describeOperation, errorBox, jobProgress, notify, statusBadge, summarizeResult } from "../ui";

interface Schedule {
  id: number;
  name: string;
  operation: string;
  params: Record<string, unknown>;
  target: Record<string, unknown>;
  cron: string;
  timezone: string;
  enabled: boolean;
  last_run_at: string | null;
  next_run_at: string | null;
}

export async function jobsPage(main: HTMLElement): Promise<Cleanup> {
  const list = h("div");
  const schedules = h("div");
  const statusFilter = h("select", { name: "job-status" }, ["", "pending", "running", "succeeded", "failed", "cancelled"]
    .map((s) => h("option", { value: s }, s || "Any status")));
  statusFilter.addEventListener("change", () => void load());
  fill(main, h("div", { class: "page-head" }, h("h1", null, "Jobs")),
    h("div", { class: "filters" }, field("Status", statusFilter)), list,
    can(P.scheduleRead) ? h("section", { "aria-labelledby": "schedules-title" },
      h("h2", { id: "schedules-title" }, "Schedules"), schedules) : null);
  const timer = window.setInterval(() => void load(), 5000);
  await Promise.all([load(), can(P.scheduleRead) ? loadSchedules() : Promise.resolve()]);
  return () => clearInterval(timer);

  async function load(): Promise<void> {
    try {
      const page = await get<{ items: Job[] }>(`/api/jobs${query({ status: statusFilter.value, limit: 50 })}`);
      fill(list, page.items.length ? h("div", { class: "table-wrap" }, h("table", { class: "compact" },
        h("caption", { class: "visually-hidden" }, "Jobs, newest first"),
        h("thead", null, h("tr", null, ["Job", "Operation", "Status", "Devices", "Succeeded", "Failed", "By", "Started"]
          .map((t) => h("th", { scope: "col" }, t)))),
        h("tbody", null, page.items.map((job) => h("tr", null,
          h("th", { scope: "row" }, h("a", { href: `/jobs/${job.id}` }, `#${job.id}`)),
          h("td", null, describeOperation(job)), h("td", null, statusBadge(job.status)),
          h("td", null, String(job.total)), h("td", null, String(job.counts.succeeded)),
          h("td", null, String(job.counts.failed)), h("td", null, job.created_by ?? (job.schedule_id ? "schedule" : "—")),
          h("td", null, timeElement(job.started_at ?? job.created_at))))))) : h("p", null, "No jobs yet."));
    } catch (error) {
      fill(list, errorBox(error));
    }
  }

  async function loadSchedules(): Promise<void> {
    let items: Schedule[];
    try {
      items = await get<Schedule[]>("/api/schedules");
    } catch (error) {
      fill(schedules, errorBox(error));
      return;
    }
    const writable = can(P.scheduleWrite);
    fill(schedules, items.length ? h("div", { class: "table-wrap" }, h("table", { class: "compact" },
      h("caption", { class: "visually-hidden" }, "Schedules"),
      h("thead", null, h("tr", null, ["Name", "Operation", "Devices", "When", "Next run", "Last run", ""]
        .map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", null, items.map((s) => {
        const toggle = writable ? h("button", { type: "button", class: "secondary small" }, s.enabled ? "Pause" : "Resume") : null;
        toggle?.addEventListener("click", () => void busy(toggle, async () => {
          await patch(`/api/schedules/${s.id}`, { enabled: !s.enabled });
          await loadSchedules();
        }));
        const remove = writable ? h("button", { type: "button", class: "danger small" }, "Delete") : null;
        remove?.addEventListener("click", () => void busy(remove, async () => {
          if (!(await confirmAction(`Delete the schedule ${s.name}?`, "Jobs it started stay.", "Delete"))) return;
          await del(`/api/schedules/${s.id}`);
          await loadSchedules();
        }));
        return h("tr", null, h("th", { scope: "row" }, s.name), h("td", null, describeOperation(s)),
          h("td", null, describeTarget(s.target)), h("td", { class: "mono" }, `${s.cron} (${s.timezone})`),
          h("td", null, s.enabled ? timeElement(s.next_run_at) : "paused"), h("td", null, timeElement(s.last_run_at)),
          h("td", null, toggle, " ", remove));
      })))) : h("p", null, "No schedules."), writable ? scheduleForm(loadSchedules) : null);
  }
}

function describeTarget(target: Record<string, unknown>): string {
  if (target.all) return "all devices";
  const parts: string[] = [];
  for (const key of ["tags", "groups", "names", "devices"]) {
    const values = target[key];
    if (Array.isArray(values) && values.length) parts.push(`${key}: ${values.slice(0, 5).join(", ")}${values.length > 5 ? "…" : ""}`);
  }
  return parts.join("; ") || "—";
}

const SCHEDULABLE: [string, string, Record<string, unknown>][] = [
  ["power-on", "Power on", { operation: "power", params: { action: "on" } }],
  ["power-off", "Power off", { operation: "power", params: { action: "off" } }],
  ["power-state", "Read power state", { operation: "power", params: { action: "state" } }],
  ["inventory", "Read inventory", { operation: "inventory", params: {} }],
  ["logs", "Pull logs", { operation: "logs", params: {} }],
];

function scheduleForm(reload: () => Promise<void>): HTMLElement {
  const name = h("input", { name: "schedule-name", required: true, maxlength: "128" });
  const what = h("select", { name: "schedule-operation" }, SCHEDULABLE.map(([value, label]) => h("option", { value }, label)));
  const tag = h("input", { name: "schedule-tag", placeholder: "all devices when empty" });
  const cron = h("input", { name: "schedule-cron", required: true, value: "0 7 * * 1-5", class: "mono" });
  const zone = h("input", { name: "schedule-timezone", value: Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC" });
  const submit = h("button", { type: "submit", class: "primary" }, "Add schedule");
  const form = h("form", { class: "inline-form" }, field("Name", name), field("Operation", what),
    field("Devices with tag", tag), field("Cron (min hour day month weekday)", cron), field("Time zone", zone), submit);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const chosen = SCHEDULABLE.find(([value]) => value === what.value)![2];
    void busy(submit, async () => {
      await post("/api/schedules", { name: name.value.trim(), ...chosen, cron: cron.value.trim(), timezone: zone.value.trim(),
        target: tag.value.trim() ? { tags: [tag.value.trim()] } : { all: true } });
      notify("Schedule added.");
      form.reset();
      await reload();
    });
  });
  return h("details", null, h("summary", null, "New schedule"), form);
}

export async function jobPage(main: HTMLElement, params: string[]): Promise<Cleanup> {
  const id = Number(params[0]);
  let job: JobDetail;
  try {
    job = await get<JobDetail>(`/api/jobs/${id}`);
  } catch (error) {
    fill(main, h("h1", null, `Job ${id}`), errorBox(error));
    return () => undefined;
  }
  const results = h("div");
  const cancel = can(P.jobCancel) && !["succeeded", "failed", "cancelled"].includes(job.status)
    ? h("button", { type: "button", class: "danger" }, "Cancel the job") : null;
  cancel?.addEventListener("click", () => void busy(cancel, async () => {
    await post(`/api/jobs/${id}/cancel`);
    notify(`Job ${id} is being cancelled.`);
  }));
  const { element, watch } = jobProgress(job, { onFinished: () => {
    cancel?.remove();
    void showResults();
  } });
  fill(main, h("div", { class: "page-head" }, h("p", { class: "breadcrumb" }, h("a", { href: "/jobs" }, "Jobs"), " / "),
    h("h1", null, `Job ${id}: ${describeOperation(job)}`)),
    h("p", null, `Started by ${job.created_by ?? "a schedule"} `, timeElement(job.created_at), "."),
    cancel, element, h("h2", null, "Devices"), results);
  await showResults();
  const timer = window.setInterval(() => void showResults(), 3000);
  return () => {
    watch.close();
    clearInterval(timer);
  };

  async function showResults(): Promise<void> {
    try {
      const detail = await get<JobDetail>(`/api/jobs/${id}`);
      fill(results, h("div", { class: "table-wrap" }, h("table", { class: "compact" },
        h("caption", { class: "visually-hidden" }, "Each device's part"),
        h("thead", null, h("tr", null, ["Device", "Status", "Attempts", "Result", "Finished"].map((t) =>
          h("th", { scope: "col" }, t)))),
        h("tbody", null, detail.devices.map((d) => h("tr", { "data-status": d.status },
          h("th", { scope: "row" }, d.device_id ? h("a", { href: `/devices/${d.device_id}` }, d.device_name) : d.device_name),
          h("td", null, statusBadge(d.status)), h("td", null, String(d.attempts)),
          h("td", null, d.error ? `${d.reason ?? "error"}: ${d.error}` : summarizeResult(d.result)),
          h("td", null, timeElement(d.finished_at))))))));
    } catch (error) {
      fill(results, errorBox(error));
    }
  }
}
