// The web UI driven in Debian's chromium (headless) by playwright-core, flow by flow, as a person would use it.
//
// Input: one JSON argument {url, admin, viewer, device, image, output, webDir}.  Output, on stdout, one JSON
// object per line: {"type": "result", "flow": ..., ...} when a flow is done (the pytest side asserts on them),
// {"type": "ask", "id": n, ...} when only the test can answer (the consent code the simulated device shows,
// comparing the KVM canvas with the device's framebuffer); the answer comes back on stdin as {"id": n, ...}.
// Screenshots go to <output>/*.png.

import { createRequire } from "node:module";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";

const config = JSON.parse(process.argv[2]);
const require = createRequire(join(config.webDir, "package.json"));
const { chromium } = require("playwright-core");

mkdirSync(config.output, { recursive: true });
const answers = new Map();
let asked = 0;
createInterface({ input: process.stdin }).on("line", (line) => {
  const answer = JSON.parse(line);
  answers.get(answer.id)?.(answer);
});

function emit(message) {
  process.stdout.write(JSON.stringify(message) + "\n");
}

function ask(question) {
  asked += 1;
  const id = asked;
  return new Promise((resolve) => {
    answers.set(id, resolve);
    emit({ type: "ask", id, ...question });
  });
}

function result(flow, data) {
  emit({ type: "result", flow, ...data });
}

async function shot(page, name) {
  await page.screenshot({ path: join(config.output, `${name}.png`), fullPage: false });
}

/** Controls without an accessible name, duplicate ids, a page without its h1: what a screen reader would trip on. */
async function accessibility(page) {
  return page.evaluate(() => {
    const problems = [];
    const visible = (el) => !el.closest("[hidden]") && el.getClientRects().length > 0;
    for (const el of document.querySelectorAll("input, select, textarea, button, a[href], [role=tab]")) {
      if (el.type === "hidden" || !visible(el)) continue;
      const labelled = el.getAttribute("aria-label") || el.getAttribute("aria-labelledby")
        || [...(el.labels ?? [])].map((l) => l.textContent).join(" ").trim() || el.textContent.trim() || el.title;
      if (!labelled) problems.push(`no accessible name: ${el.outerHTML.slice(0, 100)}`);
    }
    const ids = [...document.querySelectorAll("[id]")].map((el) => el.id);
    for (const id of new Set(ids.filter((id, i) => ids.indexOf(id) !== i))) problems.push(`duplicate id ${id}`);
    if (document.querySelectorAll("h1").length !== 1) problems.push("not exactly one h1");
    return problems;
  });
}

const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-background-networking", "--disable-gpu", "--no-first-run",
    "--disable-component-update", "--disable-sync", "--disable-quic"],
});
const consoleErrors = [];

async function newPage(viewport = { width: 1280, height: 800 }, trackErrors = true) {
  const context = await browser.newContext({ viewport, acceptDownloads: true, baseURL: config.url });
  await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: config.url });
  const page = await context.newPage();
  page.setDefaultTimeout(30_000);
  if (trackErrors) {
    page.on("console", (message) => {
      if (message.type() === "error") consoleErrors.push(message.text());
    });
    page.on("pageerror", (error) => consoleErrors.push(String(error)));
  }
  return page;
}

async function signIn(page, who, keyboardOnly = false) {
  await page.goto("/");
  await page.waitForURL("**/login");
  if (keyboardOnly) {
    // the user name field has the focus; Tab reaches the password; Enter submits
    await page.keyboard.type(who.username);
    await page.keyboard.press("Tab");
    await page.keyboard.type(who.password);
    await page.keyboard.press("Enter");
  } else {
    await page.getByLabel("User name").fill(who.username);
    await page.getByLabel("Password").fill(who.password);
    await page.getByRole("button", { name: "Sign in" }).click();
  }
  await page.getByRole("heading", { name: "Fleet", level: 1 }).waitFor();
}

async function openTab(page, name) {
  await page.getByRole("tab", { name }).click();
  await page.waitForFunction((label) => document.querySelector("[role=tab][aria-selected=true]")?.textContent === label,
    name);
}

const device = config.device;
const problems = {};
let admin;

async function flow(name, body) {
  const started = Date.now();
  try {
    await body();
  } catch (error) {
    result(name, { ok: false, error: String(error?.stack ?? error) });
    if (admin) await shot(admin, `failed-${name}`).catch(() => undefined);
    return;
  }
  emit({ type: "timing", flow: name, seconds: (Date.now() - started) / 1000 });
}

await flow("sign_in", async () => {
  admin = await newPage();
  await admin.goto("/");
  await admin.waitForURL("**/login");
  await shot(admin, "01-sign-in");
  problems.login = await accessibility(admin);
  await signIn(admin, config.admin, true);
  await admin.locator(".counts button[data-state=''] .number").filter({ hasText: /\d+/ }).waitFor();
  const total = await admin.locator(".counts button[data-state=''] .number").textContent();
  await admin.locator("table.devices tbody tr").nth(1).waitFor();
  problems.fleet = await accessibility(admin);
  await shot(admin, "02-fleet");
  result("sign_in", { ok: true, total: Number(total), rows: await admin.locator("table.devices tbody tr").count(),
    connected: await admin.locator("table.devices tbody .badge.cira", { hasText: "Connected" }).count() });
});

await flow("find_device", async () => {
  await admin.getByLabel("Search").fill(device.name);
  await admin.waitForFunction(() => document.querySelectorAll("table.devices tbody tr").length === 1);
  const rows = await admin.locator("table.devices tbody tr th").allTextContents();
  await admin.getByRole("link", { name: device.name, exact: true }).click();
  await admin.getByRole("heading", { name: device.name, level: 1 }).waitFor();
  await admin.getByRole("heading", { name: "Reachability history" }).waitFor();
  problems.device = await accessibility(admin);
  await shot(admin, "03-device-summary");
  result("find_device", { ok: true, rows, url: new URL(admin.url()).pathname,
    tunnel: await admin.locator(".cira-tunnel").textContent(),
    tunnels: await admin.locator(".tunnel-history li").allTextContents() });
});

await flow("power_on", async () => {
  await openTab(admin, "Power & boot");
  const before = await admin.locator(".device-state .badge").first().textContent();
  await admin.locator("[data-power=on]").click();
  await admin.waitForFunction(() => document.querySelector(".device-state .badge")?.textContent === "On", null,
    { timeout: 60_000 });
  const after = await admin.locator(".device-state .badge").first().textContent();
  await shot(admin, "04-power");
  result("power_on", { ok: true, before, after, url: new URL(admin.url()).pathname });
});

await flow("features", async () => {
  await openTab(admin, "Settings");
  await admin.getByRole("button", { name: "Switch all on" }).click();
  await admin.getByText("Now: listener on, sol on, ider on, kvm on.").waitFor({ timeout: 60_000 });
  problems.settings = await accessibility(admin);
  await shot(admin, "05-settings");
  result("features", { ok: true });
});

await flow("sol", async () => {
  await openTab(admin, "Serial console");
  await admin.locator("[data-sol=connect]").click();
  await admin.getByText(`Connected to ${device.name}.`).waitFor();
  await admin.locator(".terminal .xterm").click();
  // the machine was switched on moments ago: Enter until its shell answers with a prompt
  for (let attempt = 0; attempt < 30; attempt++) {
    await admin.keyboard.press("Enter");
    const prompted = await admin.waitForFunction(() => /root@\S+:\S*# $/m.test(
      document.querySelector(".terminal .xterm-rows")?.innerText ?? ""), null, { timeout: 1000 }).catch(() => null);
    if (prompted) break;
  }
  await admin.keyboard.type("echo browser-says-hello\r");
  await admin.keyboard.type("uname -a\r");
  await admin.waitForFunction(() => (document.querySelector(".terminal .xterm-rows")?.textContent ?? "")
    .includes("GNU/Linux"));
  const screenText = await admin.locator(".terminal .xterm-rows").innerText();
  await admin.getByRole("button", { name: "Send break" }).click();
  const saving = admin.waitForEvent("download");
  await admin.getByRole("button", { name: "Download session log" }).click();
  const download = await saving;
  const logPath = join(config.output, "sol-session.log");
  await download.saveAs(logPath);
  problems.sol = await accessibility(admin);
  await shot(admin, "06-sol");
  await admin.getByRole("button", { name: "Disconnect" }).click();
  await admin.waitForFunction(() => document.querySelector(".tabpanel")?.dataset.session === "closed");
  result("sol", { ok: true, screen: screenText, log: readFileSync(logPath, "latin1"),
    filename: download.suggestedFilename() });
});

await flow("kvm", async () => {
  await openTab(admin, "Remote screen");
  await admin.locator("[data-kvm=connect]").click();
  await admin.getByRole("heading", { name: "Consent needed" }).waitFor();
  const refusal = await admin.locator(".session-status").textContent();
  await shot(admin, "07-kvm-consent");
  await admin.getByRole("button", { name: "Request consent" }).click();
  await admin.getByLabel("Code shown on the device").waitFor();
  const { code } = await ask({ question: "consent_code", device: device.id });
  await admin.getByLabel("Code shown on the device").fill(String(code));
  await admin.getByRole("button", { name: "Send the code and connect" }).click();
  await admin.getByText(`Connected to ${device.name}.`).waitFor();
  await admin.locator(".kvm-screen canvas").click();
  await admin.keyboard.type("echo typed-on-the-kvm-screen\n");
  const shell = await ask({ question: "wait_screen", device: device.id, text: "typed-on-the-kvm-screen" });
  // the canvas catches up with the device's screen, then its pixels go to the test for comparison
  const dump = join(config.output, "kvm-canvas.rgba");
  let compared;
  for (let attempt = 0; attempt < 20; attempt++) {
    await admin.waitForTimeout(300);
    const pixels = await admin.evaluate(() => {
      const canvas = document.querySelector(".kvm-screen canvas");
      const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height);
      return { width: canvas.width, height: canvas.height, data: Array.from(data.data) };
    });
    writeFileSync(dump, Buffer.from(pixels.data));
    compared = await ask({ question: "kvm_compare", device: device.id, path: dump, width: pixels.width,
      height: pixels.height });
    if (compared.equal) break;
  }
  problems.kvm = await accessibility(admin);
  await shot(admin, "08-kvm");
  const saving = admin.waitForEvent("download");
  await admin.getByRole("button", { name: "Screenshot" }).click();
  const screenshot = await saving;
  const screenshotPath = join(config.output, "kvm-screenshot.png");
  await screenshot.saveAs(screenshotPath);
  await admin.getByRole("button", { name: "Disconnect" }).click();
  await admin.getByText("Disconnected.").waitFor();
  result("kvm", { ok: true, refusal, shell, compared, screenshot: screenshotPath });
});

await flow("ider", async () => {
  await admin.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Images" }).click();
  await admin.getByRole("heading", { name: "Boot images", level: 1 }).waitFor();
  await admin.getByLabel("Image file").setInputFiles(config.image);
  await admin.getByLabel("Expected SHA-256").fill(config.imageSha256);
  await admin.getByRole("button", { name: "Upload" }).click();
  await admin.getByText(/is ready \(SHA-256 [0-9a-f]{64}\)/).waitFor();
  await admin.getByRole("cell", { name: "rescue.iso" }).waitFor();
  problems.images = await accessibility(admin);
  await shot(admin, "09-images");
  await admin.goto(`/devices/${device.id}/ider`);
  await admin.getByRole("heading", { name: "Boot from an image (IDE-R)" }).waitFor();
  await admin.getByLabel("Image", { exact: true }).selectOption({ index: 0 });
  await admin.getByRole("button", { name: "Boot from this image" }).click();
  await admin.locator(".ider-run[data-state=done], .ider-run[data-state=failed]").waitFor({ timeout: 90_000 });
  const state = await admin.locator(".ider-run").getAttribute("data-state");
  const bootConsole = await admin.locator("pre.boot-console").textContent().catch(() => "");
  await shot(admin, "10-ider");
  result("ider", { ok: true, state, console: bootConsole,
    run: await admin.locator(".ider-run dl").innerText() });
});

await flow("device_tabs", async () => {
  await admin.goto(`/devices/${device.id}/inventory`);
  await admin.getByRole("button", { name: "Read inventory now" }).click();
  await admin.getByRole("heading", { name: "Processors" }).waitFor({ timeout: 60_000 });
  const chassis = await admin.locator("section.inventory").first().innerText();
  problems.hardware = await accessibility(admin);
  await shot(admin, "21-hardware");
  await openTab(admin, "Logs");
  await admin.getByRole("button", { name: "Pull logs from the device" }).click();
  await admin.waitForFunction(() => /^\d+ of \d+ records$/.test(document.querySelector(".table-status")?.textContent ?? ""),
    null, { timeout: 60_000 });
  const events = await admin.locator(".table-status").textContent();
  await admin.getByLabel("Log", { exact: true }).selectOption("audit");
  await admin.waitForFunction(() => document.querySelector("table.logs thead")?.textContent?.includes("By"));
  await admin.getByLabel("Filter").fill("KVM");
  const filtered = await admin.locator("table.logs tbody tr").allInnerTexts();
  const saving = admin.waitForEvent("download");
  await admin.getByRole("button", { name: "Download CSV" }).click();
  const csvPath = join(config.output, "device-audit-log.csv");
  await (await saving).saveAs(csvPath);
  problems.logs = await accessibility(admin);
  await shot(admin, "22-logs");
  await openTab(admin, "Alarm clocks");
  await admin.getByLabel("Name").fill("wake-up");
  await admin.getByLabel("First wake-up (your time)").fill("2031-01-02T07:30");
  await admin.getByRole("button", { name: "Add alarm" }).click();
  await admin.getByRole("cell", { name: "wake-up", exact: true }).waitFor({ timeout: 60_000 });
  problems.alarms = await accessibility(admin);
  await shot(admin, "23-alarms");
  await openTab(admin, "Consent");
  await admin.getByRole("button", { name: "Request consent (show a code)" }).waitFor();
  problems.consent = await accessibility(admin);
  result("device_tabs", { ok: true, chassis, events, filtered, csv: readFileSync(csvPath, "utf8") });
});

await flow("bulk_power", async () => {
  await admin.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Fleet" }).click();
  await admin.getByRole("heading", { name: "Fleet", level: 1 }).waitFor();
  await admin.locator("table.devices tbody tr").nth(49).waitFor();
  await admin.getByLabel("Select every device on this page").check();
  await admin.getByText("50 devices selected").waitFor();
  await admin.locator(".bulk-actions [data-action='power:on']").click();
  const first = admin.locator(".job-progress").last();
  await first.waitFor();
  const jobTitle = await first.locator("h3").textContent();
  // the power-on job, then the power-state read the page starts after it, both followed live
  await admin.waitForFunction(() => {
    const jobs = [...document.querySelectorAll(".job-progress")];
    return jobs.length === 2 && jobs.every((j) => j.dataset.status === "succeeded");
  }, null, { timeout: 120_000 });
  const perDevice = await admin.locator(".job-progress").last().locator("tbody tr[data-status=succeeded]").count();
  const summary = await admin.locator(".job-progress").last().locator(".job-summary").textContent();
  await admin.waitForFunction(() => [...document.querySelectorAll("table.devices td.power")]
    .filter((cell) => cell.textContent === "On").length === 50, null, { timeout: 30_000 });
  await shot(admin, "11-bulk-job");
  const jobId = Number(/Job (\d+)/.exec(jobTitle)[1]);
  await admin.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Jobs" }).click();
  await admin.getByRole("heading", { name: "Jobs", level: 1 }).waitFor();
  await admin.getByText("New schedule").click();
  await admin.getByLabel("Name").fill("kiosks-on-weekday-mornings");
  await admin.getByLabel("Operation").selectOption("power-on");
  await admin.getByLabel("Devices with tag").fill("kiosk");
  await admin.getByLabel("Time zone").fill("UTC");
  await admin.getByRole("button", { name: "Add schedule" }).click();
  await admin.getByRole("rowheader", { name: "kiosks-on-weekday-mornings" }).waitFor();
  const schedule = await admin.getByRole("rowheader", { name: "kiosks-on-weekday-mornings" }).locator("..").innerText();
  problems.jobs = await accessibility(admin);
  await shot(admin, "12-jobs");
  await admin.goto(`/jobs/${jobId}`);
  await admin.locator("tbody tr[data-status=succeeded]").nth(49).waitFor();
  await shot(admin, "13-job");
  result("bulk_power", { ok: true, jobId, perDevice, summary, schedule });
});

await flow("admin_pages", async () => {
  await admin.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Users" }).click();
  await admin.getByRole("heading", { name: "Console users", level: 1 }).waitFor();
  await admin.getByRole("cell", { name: config.viewer.username }).waitFor();
  problems.users = await accessibility(admin);
  await shot(admin, "14-users");
  await admin.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Audit trail" }).click();
  await admin.getByRole("heading", { name: "Audit trail", level: 1 }).waitFor();
  await admin.getByLabel("Action").fill("sol.open");
  await admin.getByRole("button", { name: "Apply" }).click();
  await admin.getByText(/^1 entries shown\./).waitFor();
  const saving = admin.waitForEvent("download");
  await admin.getByRole("button", { name: "Download CSV" }).click();
  const csvPath = join(config.output, "audit.csv");
  await (await saving).saveAs(csvPath);
  await admin.getByLabel("Action").fill("");
  await admin.getByRole("button", { name: "Apply" }).click();
  await admin.locator("tbody tr").nth(10).waitFor();
  problems.audit = await accessibility(admin);
  await shot(admin, "15-audit");
  result("admin_pages", { ok: true, csv: readFileSync(csvPath, "utf8") });
});

await flow("keyboard", async () => {
  // tabs follow the arrow keys; a device page is usable without a mouse
  await admin.goto(`/devices/${device.id}`);
  const history = await admin.locator("figure.history figcaption").textContent();
  await shot(admin, "20-device-history");
  await admin.getByRole("tab", { name: "Summary" }).focus();
  await admin.keyboard.press("ArrowRight");
  const second = await admin.evaluate(() => document.activeElement?.textContent);
  await admin.keyboard.press("End");
  const last = await admin.evaluate(() => document.activeElement?.textContent);
  const url = new URL(admin.url()).pathname;
  result("keyboard", { ok: true, second, last, url, history });
});

await flow("tablet", async () => {
  const tablet = await newPage({ width: 820, height: 1180 });
  await signIn(tablet, config.admin);
  await tablet.locator("table.devices tbody tr").nth(1).waitFor();
  await shot(tablet, "16-tablet-fleet");
  await tablet.goto(`/devices/${device.id}/power`);
  await tablet.getByRole("heading", { name: device.name, level: 1 }).waitFor();
  await tablet.locator("[data-power=on]").waitFor();
  await shot(tablet, "17-tablet-device");
  const overflow = await tablet.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  result("tablet", { ok: true, overflow });
  await tablet.context().close();
});

await flow("viewer", async () => {
  const viewer = await newPage(undefined, false); // its refused requests are logged as errors, as they should be
  await signIn(viewer, config.viewer);
  await viewer.locator("table.devices tbody tr").nth(1).waitFor();
  const fleetButtons = await viewer.locator("main button:not(.count):not([aria-label])").allTextContents();
  const checkboxes = await viewer.locator("table.devices input[type=checkbox]").count();
  await shot(viewer, "18-viewer-fleet");
  await viewer.goto(`/devices/${device.id}`);
  await viewer.getByRole("heading", { name: device.name, level: 1 }).waitFor();
  const tabs = await viewer.getByRole("tab").allTextContents();
  await openTab(viewer, "Power & boot");
  const powerButtons = await viewer.locator(".tabpanel button").count();
  await shot(viewer, "19-viewer-device");
  const forged = await viewer.evaluate(async (deviceId) => {
    const csrf = decodeURIComponent(/outband_csrf=([^;]+)/.exec(document.cookie)?.[1] ?? "");
    const send = async (path, body, headers = { "X-CSRF-Token": csrf }) => (await fetch(path, {
      method: "POST", headers: { "Content-Type": "application/json", ...headers }, body: JSON.stringify(body),
    })).status;
    const socket = await new Promise((resolve) => {
      const ws = new WebSocket(`ws://${location.host}/api/devices/${deviceId}/sol`);
      ws.onmessage = (event) => resolve(JSON.parse(event.data));
      ws.onclose = (event) => resolve({ closed: event.code });
    });
    return {
      power: await send("/api/operations/power", { target: { all: true }, params: { action: "off" } }),
      powerWithoutCsrf: await send("/api/operations/power", { target: { all: true }, params: { action: "off" } }, {}),
      ticket: await send(`/api/devices/${deviceId}/redirect-tickets`, { kind: "kvm" }),
      image: await send("/api/images", { name: "x.iso", kind: "cd", size: 2048 }),
      boot: await send(`/api/devices/${deviceId}/ider-boot`, { image_id: "0000000000000000" }),
      user: await send("/api/users", { username: "mallory", password: "a-long-password", role: "admin" }),
      socket,
    };
  }, device.id);
  result("viewer", { ok: true, fleetButtons, checkboxes, tabs, powerButtons, forged });
  await viewer.context().close();
});

await flow("waiting_offline", async () => {
  // a CIRA PC that has never dialled in: its job waits for it, and the page says so (then the job is cancelled)
  const made = await admin.evaluate(async () => {
    const csrf = decodeURIComponent(/outband_csrf=([^;]+)/.exec(document.cookie)?.[1] ?? "");
    const reply = await fetch("/api/devices", { method: "POST", headers: { "Content-Type": "application/json",
      "X-CSRF-Token": csrf }, body: JSON.stringify({ name: "closed-laptop", transport: "cira",
      uuid: "0f1e2d3c-4b5a-4978-8a9b-0c1d2e3f4a5b", password: "Any-pass-1!" }) });
    return reply.json();
  });
  await admin.goto(`/devices/${made.id}`);
  await admin.getByRole("button", { name: "Refresh state" }).click();
  const summary = admin.locator(".job-summary").filter({ hasText: "waiting for 1 CIRA device to dial in" });
  await summary.waitFor();
  const text = await summary.textContent();
  const badge = await admin.locator(".device-state .badge.cira").textContent();
  const jobLink = await admin.locator(".job-progress h3 a").getAttribute("href");
  await admin.evaluate(async (href) => {
    const csrf = decodeURIComponent(/outband_csrf=([^;]+)/.exec(document.cookie)?.[1] ?? "");
    await fetch(`/api${href}/cancel`, { method: "POST", headers: { "X-CSRF-Token": csrf } });
  }, jobLink);
  await admin.locator(".job-summary").filter({ hasText: "cancelled" }).waitFor();
  result("waiting_offline", { ok: true, text, badge });
});

result("accessibility", { ok: true, problems, consoleErrors });
await browser.close();
emit({ type: "done" });
process.exit(0);
