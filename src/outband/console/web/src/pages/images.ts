// The IDE-R image library: upload ISO and floppy images (in pieces, resumable, checked by SHA-256), list
// and delete them.

import { del, get, post, request, type Image } from "../api";
import { field, fill, formatBytes, h, timeElement } from "../dom";
import { P, can } from "../session";
import { busy, confirmAction, errorBox, errorText, notify, statusBadge } from "../ui";

const PIECE = 8 * 1024 * 1024;

/** A form that uploads one image; ``done`` gets the stored image. */
export function uploadForm(done: (image: Image) => void): HTMLElement {
  const file = h("input", { type: "file", name: "image-file", accept: ".iso,.img,.ima,.vfd,.bin", required: true });
  const kind = h("select", { name: "image-kind" }, h("option", { value: "cd" }, "CD/DVD (ISO 9660)"),
    h("option", { value: "floppy" }, "Floppy or disk image"));
  const checksum = h("input", { name: "image-sha256", pattern: "[0-9a-fA-F]{64}", autocomplete: "off",
    spellcheck: "false", placeholder: "optional" });
  const progress = h("progress", { max: "1", value: "0", hidden: true, "aria-label": "Upload progress" });
  const message = h("p", { role: "status", "aria-live": "polite" });
  const submit = h("button", { type: "submit", class: "primary" }, "Upload");
  file.addEventListener("change", () => {
    const name = file.files?.[0]?.name.toLowerCase() ?? "";
    kind.value = name.endsWith(".iso") ? "cd" : name ? "floppy" : kind.value;
  });
  const form = h("form", { class: "stacked upload", "aria-label": "Upload an image" },
    field("Image file", file), field("Kind", kind),
    field("Expected SHA-256", checksum, "When given, the upload is refused unless its checksum matches."),
    h("div", { class: "button-row" }, submit), progress, message);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const chosen = file.files?.[0];
    if (!chosen) return;
    void busy(submit, async () => {
      progress.hidden = false;
      progress.max = chosen.size;
      progress.value = 0;
      message.textContent = `Uploading ${chosen.name}…`;
      try {
        let image = await post<Image>("/api/images", { name: chosen.name, kind: kind.value, size: chosen.size,
          ...(checksum.value ? { sha256: checksum.value.trim() } : {}) });
        while (image.received < image.size) {
          const piece = chosen.slice(image.received, Math.min(image.received + PIECE, image.size));
          image = await request<Image>("PUT", `/api/images/${image.id}/content?offset=${image.received}`, piece);
          progress.value = image.received;
          message.textContent = `Uploading ${chosen.name}: ${formatBytes(image.received)} of ${formatBytes(image.size)}`;
        }
        message.textContent = `${chosen.name} is ready (SHA-256 ${image.sha256}).`;
        form.reset();
        done(image);
      } catch (error) {
        message.textContent = `Upload failed: ${errorText(error)}`;
        throw error;
      } finally {
        progress.hidden = true;
      }
    });
  });
  return form;
}

export async function imagesPage(main: HTMLElement): Promise<void> {
  const list = h("div");
  const editable = can(P.redirect);
  fill(main, h("div", { class: "page-head" }, h("h1", null, "Boot images")),
    h("p", null, "Images here can be served to a device over IDE-R as its CD-ROM or floppy drive, to boot it from "
      + "them (see a device's Boot from image tab)."),
    editable ? h("section", { "aria-labelledby": "upload-title" }, h("h2", { id: "upload-title" }, "Upload"),
      uploadForm(() => void load())) : null,
    h("section", { "aria-labelledby": "library-title" }, h("h2", { id: "library-title" }, "Library"), list));
  await load();

  async function load(): Promise<void> {
    let images: Image[];
    try {
      images = await get<Image[]>("/api/images");
    } catch (error) {
      fill(list, errorBox(error));
      return;
    }
    fill(list, images.length ? h("div", { class: "table-wrap" }, h("table", { class: "compact" },
      h("caption", { class: "visually-hidden" }, "Images"),
      h("thead", null, h("tr", null, ["Name", "Kind", "Size", "State", "SHA-256", "Uploaded", ""].map((t) =>
        h("th", { scope: "col" }, t)))),
      h("tbody", null, images.map((image) => {
        const remove = editable ? h("button", { type: "button", class: "danger small",
          "aria-label": `Delete ${image.name}` }, "Delete") : null;
        remove?.addEventListener("click", () => void busy(remove, async () => {
          if (!(await confirmAction(`Delete ${image.name}?`, "The image file is removed from the console.", "Delete"))) return;
          await del(`/api/images/${image.id}`);
          notify(`${image.name} deleted.`);
          await load();
        }));
        return h("tr", null, h("th", { scope: "row" }, image.name), h("td", null, image.kind === "cd" ? "CD" : "floppy"),
          h("td", null, formatBytes(image.size)),
          h("td", null, image.state === "ready" ? statusBadge(image.in_use ? "serving" : "ready")
            : h("span", null, statusBadge("uploading"), ` ${formatBytes(image.received)}`)),
          h("td", { class: "mono" }, image.sha256 ?? "—"),
          h("td", null, timeElement(image.created_at), image.created_by ? ` by ${image.created_by}` : ""),
          h("td", null, remove));
      })))) : h("p", null, "The library is empty."));
  }
}
