// The console's own audit trail: who did what, on which devices, and how it ended.

import { get, query, type AuditEntry } from "../api";
import { download, field, fill, h, timeElement, toCsv } from "../dom";
import { busy, errorBox, statusBadge } from "../ui";

export async function auditPage(main: HTMLElement): Promise<void> {
  const actor = h("input", { name: "actor", autocomplete: "off" });
  const action = h("input", { name: "action", autocomplete: "off", placeholder: "e.g. sol.open, login" });
  const outcome = h("select", { name: "outcome" }, ["", "ok", "denied", "failed", "error"].map((o) =>
    h("option", { value: o }, o || "Any outcome")));
  const device = h("input", { name: "device", type: "number", min: "1", inputmode: "numeric" });
  const body = h("tbody");
  const more = h("button", { type: "button", class: "secondary" }, "Older entries");
  const csv = h("button", { type: "button", class: "secondary" }, "Download CSV");
  const status = h("p", { class: "table-status", role: "status", "aria-live": "polite" });
  const form = h("form", { class: "filters", role: "search", "aria-label": "Filter the audit trail" },
    field("Account", actor), field("Action", action), field("Outcome", outcome), field("Device id", device),
    h("button", { type: "submit", class: "secondary" }, "Apply"), csv);
  let entries: AuditEntry[] = [];
  let before: number | null = null;
  let generation = 0; // a reload supersedes pages still on their way
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    void reload();
  });
  more.addEventListener("click", () => void busy(more, () => loadPage()));
  csv.addEventListener("click", () => download("outband-audit.csv", toCsv([
    ["id", "at", "actor", "via", "client", "action", "outcome", "status", "devices", "detail"],
    ...entries.map((e) => [e.id, e.at, e.actor, e.via, e.client, e.action, e.outcome, e.status_code,
      e.devices.join(" "), e.detail]),
  ]), "text/csv"));
  fill(main, h("div", { class: "page-head" }, h("h1", null, "Audit trail")), form, status,
    h("div", { class: "table-wrap" }, h("table", { class: "compact" },
      h("caption", { class: "visually-hidden" }, "Audit entries, newest first"),
      h("thead", null, h("tr", null, ["When", "Account", "Action", "Outcome", "Devices", "Detail", "From"]
        .map((t) => h("th", { scope: "col" }, t)))), body)), more);
  await reload();

  async function reload(): Promise<void> {
    generation += 1;
    entries = [];
    before = null;
    fill(body);
    await loadPage();
  }

  async function loadPage(): Promise<void> {
    const asked = generation;
    try {
      const page = await get<{ items: AuditEntry[]; next_before: number | null }>(`/api/audit${query({
        actor: actor.value.trim(), action: action.value.trim(), outcome: outcome.value, device_id: device.value,
        before, limit: 100 })}`);
      if (asked !== generation) return;
      entries.push(...page.items);
      before = page.next_before;
      body.append(...page.items.map((e) => h("tr", null, h("td", null, timeElement(e.at)),
        h("td", null, e.actor ?? "console", h("span", { class: "via" }, ` (${e.via})`)), h("td", null, e.action),
        h("td", null, statusBadge(e.outcome)),
        h("td", null, e.devices.length ? e.devices.slice(0, 5).map((d, i) => [i ? ", " : "",
          h("a", { href: `/devices/${d}` }, String(d))]) : "—", e.device_count > 5 ? ` (+${e.device_count - 5})` : ""),
        h("td", { class: "detail" }, Object.keys(e.detail).length ? JSON.stringify(e.detail) : ""),
        h("td", null, e.client ?? ""))));
      status.textContent = `${entries.length} entries shown.`;
      more.hidden = before === null;
    } catch (error) {
      status.replaceChildren(errorBox(error));
    }
  }
}
