// The fleet: counts by state, a searchable, filterable device table, and bulk operations with live
// per-device progress.

import { get, operate, query, type Device, type Job, type Page, type Selection } from "../api";
import { field, fill, formatTime, h } from "../dom";
import type { Cleanup } from "../router";
import { P, can } from "../session";
import { busy, confirmAction, errorBox, jobProgress, notify, powerBadge, reachabilityBadge, type JobWatch } from "../ui";

const PAGE_SIZE = 50;

interface Filters {
  search: string;
  tag: string;
  group: string;
  state: string;
  offset: number;
}

const STATES: Record<string, { label: string; params: Record<string, string | number> }> = {
  "": { label: "Any state", params: {} },
  reachable: { label: "Reachable", params: { reachable: "true" } },
  unreachable: { label: "Unreachable", params: { reachable: "false" } },
  on: { label: "Powered on", params: { power_state: 2 } },
  off: { label: "Powered off", params: { power_state: 8 } },
};

interface BulkAction {
  label: string;
  permission: string;
  operation: string;
  params: Record<string, unknown>;
  confirm?: string;
  refreshPower?: boolean;
}

const ACTIONS: BulkAction[] = [
  { label: "Power on", permission: P.power, operation: "power", params: { action: "on" }, refreshPower: true },
  { label: "Power off", permission: P.power, operation: "power", params: { action: "off" }, refreshPower: true,
    confirm: "Power off" },
  { label: "Reset", permission: P.power, operation: "power", params: { action: "reset" }, refreshPower: true,
    confirm: "Reset" },
  { label: "Power cycle", permission: P.power, operation: "power", params: { action: "cycle" }, refreshPower: true,
    confirm: "Power cycle" },
  { label: "Read power state", permission: P.power, operation: "power", params: { action: "state" } },
  { label: "Read inventory", permission: P.inventory, operation: "inventory", params: {} },
  { label: "Pull logs", permission: P.logs, operation: "logs", params: {} },
  { label: "Enable SOL, IDE-R and KVM", permission: P.features, operation: "features",
    params: { listener: true, sol: true, ider: true, kvm: true } },
];

export async function fleetPage(main: HTMLElement): Promise<Cleanup> {
  const filters: Filters = { ...{ search: "", tag: "", group: "", state: "", offset: 0 },
    ...Object.fromEntries(new URLSearchParams(location.search)) } as Filters;
  filters.offset = Number(filters.offset) || 0;
  const selected = new Set<number>();
  const watches: JobWatch[] = [];
  let pageDevices: Device[] = [];
  let total = 0;
  let generation = 0;

  const counts = h("ul", { class: "counts", "aria-label": "Devices by state" });
  const search = h("input", { type: "search", name: "search", value: filters.search, placeholder: "Name or address",
    autocomplete: "off" });
  const tag = h("select", { name: "tag" }, h("option", { value: "" }, "Any tag"));
  const group = h("select", { name: "group" }, h("option", { value: "" }, "Any group"));
  const state = h("select", { name: "state" },
    Object.entries(STATES).map(([value, { label }]) => h("option", { value }, label)));
  state.value = filters.state;
  const filterForm = h("form", { class: "filters", role: "search", "aria-label": "Filter devices",
    onsubmit: (event: Event) => { event.preventDefault(); apply(); } },
    field("Search", search), field("Tag", tag), field("Group", group), field("State", state),
    h("button", { type: "submit", class: "secondary" }, "Apply"));
  let searchTimer: number | undefined;
  search.addEventListener("input", () => {
    clearTimeout(searchTimer);
    searchTimer = window.setTimeout(apply, 300);
  });
  for (const select of [tag, group, state]) select.addEventListener("change", apply);

  const tableBody = h("tbody");
  const selectPage = h("input", { type: "checkbox", "aria-label": "Select every device on this page" });
  selectPage.addEventListener("change", () => {
    for (const device of pageDevices) {
      if (selectPage.checked) selected.add(device.id);
      else selected.delete(device.id);
    }
    renderRows();
  });
  const selectable = ACTIONS.some((action) => can(action.permission));
  const table = h("table", { class: "devices" },
    h("caption", { class: "visually-hidden" }, "Devices"),
    h("thead", null, h("tr", null,
      selectable ? h("th", { scope: "col", class: "select" }, selectPage) : null,
      ["Name", "Address", "Power", "Reachability", "AMT", "Mode", "Tags", "Group", "Last seen"].map((title) =>
        h("th", { scope: "col" }, title)))),
    tableBody);
  const pager = h("nav", { class: "pager", "aria-label": "Pages of devices" });
  const status = h("p", { class: "table-status", role: "status", "aria-live": "polite" });

  const actions = ACTIONS.filter((action) => can(action.permission));
  const selectionText = h("span", { class: "selection", "aria-live": "polite" });
  const selectAll = h("button", { type: "button", class: "link" }, "");
  const clear = h("button", { type: "button", class: "link", onclick: () => { selected.clear(); renderRows(); } },
    "Clear selection");
  selectAll.addEventListener("click", () => void busy(selectAll, async () => {
    for (const id of await matchingIds()) selected.add(id);
    renderRows();
  }));
  const jobs = h("div", { class: "jobs-live" });
  const bulk = actions.length ? h("section", { class: "bulk", "aria-label": "Bulk actions" },
    h("div", { class: "bulk-bar" }, selectionText, selectAll, clear),
    h("div", { class: "bulk-actions", role: "group", "aria-label": "Actions on the selected devices" },
      actions.map((action) => {
        const button = h("button", { type: "button", class: action.confirm ? "danger" : "secondary",
          "data-action": `${action.operation}:${String(action.params.action ?? "")}` }, action.label);
        button.addEventListener("click", () => void run(action, button));
        return button;
      })),
    jobs) : null;

  fill(main,
    h("div", { class: "page-head" }, h("h1", null, "Fleet")),
    counts, filterForm, bulk, status,
    h("div", { class: "table-wrap" }, table), pager);

  void loadChoices();
  await reload();

  async function loadChoices(): Promise<void> {
    try {
      const [tags, groups] = await Promise.all([
        get<{ name: string; devices: number }[]>("/api/tags"),
        get<{ name: string; devices: number }[]>("/api/groups"),
      ]);
      tag.append(...tags.map((t) => h("option", { value: t.name }, `${t.name} (${t.devices})`)));
      group.append(...groups.map((g) => h("option", { value: g.name }, `${g.name} (${g.devices})`)));
      tag.value = filters.tag;
      group.value = filters.group;
    } catch (error) {
      notify(`Tags and groups could not be loaded: ${String(error)}`, "error");
    }
  }

  function apply(): void {
    filters.search = search.value.trim();
    filters.tag = tag.value;
    filters.group = group.value;
    filters.state = state.value;
    filters.offset = 0;
    const { offset: _offset, ...kept } = filters;
    history.replaceState(null, "", `/${query(kept)}`);
    void reload();
  }

  function listParams(extra: Record<string, string | number> = {}): Record<string, string | number> {
    return { search: filters.search, tag: filters.tag, group: filters.group, ...STATES[filters.state]?.params, ...extra };
  }

  async function reload(): Promise<void> {
    status.textContent = "Loading devices…";
    const asked = ++generation;
    try {
      const page = await get<Page<Device>>(`/api/devices${query(listParams({ limit: PAGE_SIZE, offset: filters.offset }))}`);
      if (asked !== generation) return; // a newer filter's answer wins, whatever order they arrive in
      pageDevices = page.items;
      total = page.total;
      status.textContent = total === 1 ? "1 device" : `${total} devices`;
      renderRows();
      renderPager();
      void renderCounts();
    } catch (error) {
      status.replaceChildren(errorBox(error));
    }
  }

  async function renderCounts(): Promise<void> {
    const base = { search: filters.search, tag: filters.tag, group: filters.group, limit: 1 };
    const wanted: [string, string, Record<string, string | number>][] = [
      ["All", "", {}], ["Reachable", "reachable", { reachable: "true" }],
      ["Unreachable", "unreachable", { reachable: "false" }], ["Powered on", "on", { power_state: 2 }],
      ["Powered off", "off", { power_state: 8 }],
    ];
    const totals = await Promise.all(wanted.map(([, , params]) =>
      get<Page<Device>>(`/api/devices${query({ ...base, ...params })}`).then((p) => p.total).catch(() => NaN)));
    fill(counts, wanted.map(([label, key], index) => h("li", null,
      h("button", { type: "button", class: "count", "aria-pressed": String(filters.state === key), "data-state": key,
        onclick: () => { state.value = key; apply(); } },
        h("span", { class: "number" }, Number.isNaN(totals[index]) ? "?" : String(totals[index])),
        h("span", { class: "label" }, label)))));
  }

  function renderRows(): void {
    fill(tableBody, pageDevices.length ? pageDevices.map((device) => {
      const box = h("input", { type: "checkbox", checked: selected.has(device.id),
        "aria-label": `Select ${device.name}` });
      box.addEventListener("change", () => {
        if (box.checked) selected.add(device.id);
        else selected.delete(device.id);
        renderSelection();
      });
      return h("tr", { "data-device": String(device.id) },
        selectable ? h("td", { class: "select" }, box) : null,
        h("th", { scope: "row" }, h("a", { href: `/devices/${device.id}` }, device.name)),
        h("td", null, device.host),
        h("td", { class: "power" }, powerBadge(device.state.power)),
        h("td", null, reachabilityBadge(device)),
        h("td", null, device.state.amt_version ?? "—"),
        h("td", null, device.state.provisioning_mode?.toUpperCase() ?? "—"),
        h("td", null, device.tags.join(", ") || "—"),
        h("td", null, device.group ?? "—"),
        h("td", null, formatTime(device.state.last_seen_at)));
    }) : h("tr", null, h("td", { colspan: selectable ? "10" : "9", class: "empty" }, "No device matches these filters.")));
    selectPage.checked = pageDevices.length > 0 && pageDevices.every((d) => selected.has(d.id));
    renderSelection();
  }

  function renderSelection(): void {
    selectionText.textContent = selected.size === 1 ? "1 device selected" : `${selected.size} devices selected`;
    selectAll.textContent = `Select all ${total} matching`;
    selectAll.hidden = total <= pageDevices.length || selected.size >= total;
    clear.hidden = selected.size === 0;
    for (const button of bulk?.querySelectorAll<HTMLButtonElement>(".bulk-actions button") ?? []) {
      button.disabled = selected.size === 0;
    }
  }

  function renderPager(): void {
    const pages = Math.max(1, Math.ceil(total / PAGE_SIZE));
    const current = Math.floor(filters.offset / PAGE_SIZE) + 1;
    const go = (offset: number) => () => { filters.offset = offset; void reload(); };
    fill(pager,
      h("button", { type: "button", class: "secondary small", disabled: current <= 1,
        onclick: go(filters.offset - PAGE_SIZE) }, "Previous"),
      h("span", null, ` Page ${current} of ${pages} `),
      h("button", { type: "button", class: "secondary small", disabled: current >= pages,
        onclick: go(filters.offset + PAGE_SIZE) }, "Next"));
  }

  async function matchingIds(): Promise<number[]> {
    const ids: number[] = [];
    for (let offset = 0; offset < total; offset += 1000) {
      const page = await get<Page<Device>>(`/api/devices${query(listParams({ limit: 1000, offset }))}`);
      ids.push(...page.items.map((d) => d.id));
      if (page.items.length < 1000) break;
    }
    return ids;
  }

  async function run(action: BulkAction, button: HTMLButtonElement): Promise<void> {
    const target: Selection = { devices: [...selected] };
    const count = selected.size;
    if (action.confirm && !(await confirmAction(`${action.confirm} ${count} device${count === 1 ? "" : "s"}?`,
      `This acts on the selected devices at once.`, action.confirm))) return;
    const job = await busy(button, () => operate(action.operation, target, action.params));
    if (job) watch(job, action.refreshPower ? target : null);
  }

  function watch(job: Job, refreshPower: Selection | null): void {
    const { element, watch: handle } = jobProgress(job, {
      perDevice: true,
      onFinished: (finalStatus) => {
        notify(`Job ${job.id} ${finalStatus}.`);
        if (refreshPower) {
          void operate("power", refreshPower, { action: "state" }).then((stateJob) => watch(stateJob, null))
            .catch((error) => notify(String(error), "error"));
        } else {
          void reload();
        }
      },
    });
    watches.push(handle);
    jobs.prepend(element);
  }

  return () => {
    clearTimeout(searchTimer);
    watches.forEach((w) => w.close());
  };
}
