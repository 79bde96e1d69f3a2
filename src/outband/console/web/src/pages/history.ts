// A device's reachability over its recent contacts, as a strip chart with a text summary for screen readers.

import { get } from "../api";
import { h, timeElement } from "../dom";
import { errorBox } from "../ui";

interface Contact {
  at: string;
  reachable: boolean;
  operation: string;
  reason: string | null;
}

const SVG = "http://www.w3.org/2000/svg";

function svg<K extends keyof SVGElementTagNameMap>(tag: K, attrs: Record<string, string | number>): SVGElementTagNameMap[K] {
  const element = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) element.setAttribute(name, String(value));
  return element;
}

/** A CIRA device's recent tunnels: when each came up and ended, and why. */
export async function tunnelHistory(deviceId: number): Promise<HTMLElement> {
  let events: Contact[];
  try {
    events = (await get<{ items: Contact[] }>(`/api/devices/${deviceId}/history?limit=200`)).items
      .filter((contact) => contact.operation === "cira").slice(0, 20);
  } catch (error) {
    return errorBox(error);
  }
  if (!events.length) return h("p", null, "No tunnel of this device has been seen yet.");
  return h("ul", { class: "tunnel-history" }, events.map((event) => h("li", { class: event.reachable ? "up" : "down" },
    timeElement(event.at), " ", event.reason ?? "")));
}

export async function historyChart(deviceId: number): Promise<HTMLElement> {
  let contacts: Contact[];
  try {
    contacts = (await get<{ items: Contact[] }>(`/api/devices/${deviceId}/history?limit=100`)).items;
  } catch (error) {
    return errorBox(error);
  }
  if (!contacts.length) return h("p", null, "The console has not contacted this device in a job yet.");
  const oldestFirst = [...contacts].reverse();
  const width = 600;
  const height = 60;
  const step = width / Math.max(oldestFirst.length, 40); // a few contacts make narrow bars, oldest on the left
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height + 16}`, class: "history", "aria-hidden": "true",
    preserveAspectRatio: "none" });
  oldestFirst.forEach((contact, index) => {
    const bar = svg("rect", { x: index * step + 1, y: contact.reachable ? 4 : height / 2, width: Math.max(step - 2, 1),
      height: contact.reachable ? height - 4 : height / 2, class: contact.reachable ? "up" : "down" });
    const title = svg("title", {});
    title.textContent = `${new Date(contact.at).toLocaleString()}: ${contact.reachable ? "reachable" : "unreachable"}`
      + ` (${contact.operation}${contact.reason ? `, ${contact.reason}` : ""})`;
    bar.append(title);
    chart.append(bar);
  });
  const label = svg("text", { x: 0, y: height + 14, class: "axis" });
  label.textContent = new Date(oldestFirst[0].at).toLocaleString();
  const labelEnd = svg("text", { x: width, y: height + 14, class: "axis", "text-anchor": "end" });
  labelEnd.textContent = new Date(oldestFirst[oldestFirst.length - 1].at).toLocaleString();
  chart.append(label, labelEnd);
  const up = contacts.filter((c) => c.reachable).length;
  return h("figure", { class: "history" }, chart,
    h("figcaption", null, `Reached on ${up} of the last ${contacts.length} contacts`
      + (contacts[0].reachable ? "; the latest succeeded." : "; the latest failed.")));
}
