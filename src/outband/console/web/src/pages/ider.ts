// Boot this device from a library image: the console serves it over IDE-R and shows the device reading it
// and what the machine printed on its serial console while booting.

import { del, get, post, type BootRun, type Image } from "../api";
import { field, fill, formatBytes, h, timeElement } from "../dom";
import { busy, definitionList, errorBox, statusBadge } from "../ui";
import type { DeviceContext } from "./device";
import { REFUSAL_HELP } from "./session";
import { uploadForm } from "./images";

const FINISHED = new Set(["done", "failed", "cancelled"]);

export async function iderTab(panel: HTMLElement, context: DeviceContext): Promise<() => void> {
  const device = context.device;
  const choice = h("select", { name: "ider-image", required: true });
  const bootNow = h("input", { type: "checkbox", id: "ider-boot", checked: true });
  const start = h("button", { type: "submit", class: "primary" }, "Boot from this image");
  const runArea = h("div", { class: "ider-run", "aria-live": "polite" });
  let timer: number | undefined;
  let stopped = false;

  const form = h("form", { class: "stacked" }, field("Image", choice),
    h("div", { class: "field checkbox" }, bootNow, h("label", { for: "ider-boot" },
      "Power the device on (or reset it) to boot from the image now")),
    h("div", { class: "button-row" }, start));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    void busy(start, async () => {
      const run = await post<BootRun>(`/api/devices/${device.id}/ider-boot`, { image_id: choice.value, boot: bootNow.checked });
      follow(run);
    });
  });
  fill(panel, h("h2", null, "Boot from an image (IDE-R)"),
    h("p", null, "The console serves the image as the device's CD-ROM or floppy drive over the network; the device "
      + "reads only what it needs."),
    form, runArea,
    h("details", null, h("summary", null, "Upload another image"), uploadForm(() => void loadImages())));
  await loadImages();
  const runs = await get<BootRun[]>(`/api/ider-runs?device_id=${device.id}`).catch(() => []);
  if (runs.length) follow(runs[0]);

  async function loadImages(): Promise<void> {
    try {
      const images = (await get<Image[]>("/api/images")).filter((i) => i.state === "ready");
      fill(choice, images.map((i) => h("option", { value: i.id }, `${i.name} (${i.kind === "cd" ? "CD" : "floppy"}, `
        + `${formatBytes(i.size)})`)));
      start.disabled = images.length === 0;
      if (!images.length) choice.append(h("option", { value: "" }, "No image uploaded yet"));
    } catch (error) {
      fill(choice);
      runArea.replaceChildren(errorBox(error));
    }
  }

  function follow(run: BootRun): void {
    draw(run);
    clearTimeout(timer);
    if (FINISHED.has(run.state) || stopped) return;
    timer = window.setTimeout(async () => {
      try {
        follow(await get<BootRun>(`/api/ider-runs/${run.id}`));
      } catch (error) {
        runArea.append(errorBox(error));
      }
    }, 700);
  }

  function draw(run: BootRun): void {
    const stop = FINISHED.has(run.state) ? null : h("button", { type: "button", class: "danger" }, "Stop serving");
    stop?.addEventListener("click", () => void busy(stop, async () => follow(await del<BootRun>(`/api/ider-runs/${run.id}`))));
    const progress = h("progress", { max: String(run.image_size), value: String(Math.min(run.bytes_sent, run.image_size)),
      "aria-label": "Bytes of the image the device has read" });
    runArea.dataset.state = run.state;
    fill(runArea,
      h("h3", null, `Serving ${run.image_name}`),
      definitionList([
        ["State", statusBadge(run.state)],
        ["Started", h("span", null, timeElement(run.started_at), ` by ${run.started_by}`)],
        ["Read by the device", h("span", null, progress,
          ` ${formatBytes(run.bytes_sent)} in ${run.reads} reads (${run.commands} commands)`)],
        ["Outcome", run.error ? `${run.error}${run.error_code && REFUSAL_HELP[run.error_code] ? ` ${REFUSAL_HELP[run.error_code]}` : ""}`
          : run.outcome ?? "in progress"],
      ]),
      stop,
      h("h4", null, "Serial console during the boot"),
      run.console.length ? h("pre", { class: "boot-console", tabindex: "0", "aria-label": "Serial console output" },
        run.console.join("\n")) : h("p", null, run.console_note ?? "Nothing yet."));
  }

  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
