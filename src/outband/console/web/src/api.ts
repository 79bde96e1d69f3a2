// The console's REST API as the page uses it: JSON in and out, the session cookie sent by the browser, and
// the CSRF token (from the outband_csrf cookie) echoed in X-CSRF-Token on every unsafe request.

export class ApiError extends Error {
  constructor(readonly status: number, message: string, readonly body: unknown) {
    super(message);
  }
}

const CSRF_COOKIE = "outband_csrf";
const UNSAFE = new Set(["POST", "PUT", "PATCH", "DELETE"]);

export function csrfToken(): string {
  for (const part of document.cookie.split(";")) {
    const [name, ...rest] = part.trim().split("=");
    if (name === CSRF_COOKIE) return decodeURIComponent(rest.join("="));
  }
  return "";
}

/** What an error body says, in one sentence (FastAPI's detail: a string, a list of problems, or an object). */
export function describe(body: unknown, fallback: string): string {
  if (body && typeof body === "object" && "detail" in body) {
    const detail = (body as { detail: unknown }).detail;
    if (typeof detail === "string") return detail;
    if (Array.isArray(detail)) {
      return detail.map((item) => {
        const problem = item as { loc?: unknown[]; msg?: string };
        const where = (problem.loc ?? []).filter((part) => part !== "body").join(".");
        return where ? `${where}: ${problem.msg}` : String(problem.msg);
      }).join("; ");
    }
    if (detail && typeof detail === "object" && "message" in detail) return String((detail as { message: unknown }).message);
  }
  return fallback;
}

export async function request<T>(method: string, path: string, body?: unknown, init?: RequestInit): Promise<T> {
  const headers = new Headers(init?.headers);
  if (UNSAFE.has(method)) headers.set("X-CSRF-Token", csrfToken());
  let payload: BodyInit | undefined;
  if (body instanceof Blob || body instanceof ArrayBuffer) {
    payload = body;
    headers.set("Content-Type", "application/octet-stream");
  } else if (body !== undefined) {
    payload = JSON.stringify(body);
    headers.set("Content-Type", "application/json");
  }
  const response = await fetch(path, { ...init, method, headers, body: payload, credentials: "same-origin" });
  const text = await response.text();
  let parsed: unknown = undefined;
  if (text) {
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = text;
    }
  }
  if (!response.ok) {
    if (response.status === 401 && !path.startsWith("/api/auth/login")) {
      window.dispatchEvent(new CustomEvent("outband:signed-out"));
    }
    throw new ApiError(response.status, describe(parsed, `${response.status} ${response.statusText}`), parsed);
  }
  return parsed as T;
}

export const get = <T>(path: string): Promise<T> => request<T>("GET", path);
export const post = <T>(path: string, body?: unknown): Promise<T> => request<T>("POST", path, body ?? {});
export const patch = <T>(path: string, body: unknown): Promise<T> => request<T>("PATCH", path, body);
export const del = <T>(path: string): Promise<T> => request<T>("DELETE", path);

export function query(params: Record<string, string | number | boolean | null | undefined>): string {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== null && value !== undefined && value !== "") search.set(key, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

// ------------------------------------------------------------------------------------------ shapes

export type Role = "admin" | "operator" | "power_only" | "viewer";

export interface User {
  id: number;
  username: string;
  role: Role;
  disabled: boolean;
  created_at: string;
  locked_until: string | null;
}

export interface Me {
  user: User;
  via: "session" | "token";
  role: Role;
  permissions: string[];
}

export interface DeviceState {
  reachable: boolean | null;
  power_state: number | null;
  power: string;
  amt_version: string | null;
  provisioning_mode: string | null;
  uuid: string | null;
  last_seen_at: string | null;
  last_checked_at: string | null;
  last_error: string | null;
}

/** A CIRA device's tunnel as the MPS sees it. */
export interface CiraInfo {
  login: "own" | "shared";
  cira_username: string | null;
  online: boolean;
  mps_node: string | null;
  peer: string | null;
  connected_since: string | null;
  last_keepalive: string | null;
  disconnected_at: string | null;
  last_error: string | null;
}

export interface Device {
  id: number;
  name: string;
  host: string;
  username: string;
  use_tls: boolean;
  http_port: number;
  tls_port: number;
  fingerprint: string | null;
  transport: string;
  cira: CiraInfo | null;
  group: string | null;
  tags: string[];
  state: DeviceState;
  created_at: string;
  updated_at: string;
}

export interface Page<T> {
  items: T[];
  total: number;
  limit: number;
  offset: number;
}

export interface Counts {
  pending: number;
  running: number;
  succeeded: number;
  failed: number;
  cancelled: number;
}

export type JobStatus = keyof Counts;

export interface Job {
  id: number;
  operation: string;
  params: Record<string, unknown>;
  status: JobStatus;
  created_by: string | null;
  schedule_id: number | null;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
  cancel_requested: boolean;
  total: number;
  counts: Counts;
  /** Pending devices that are CIRA devices away: the job waits for them to dial in. */
  waiting_offline: number;
}

export interface JobDevice {
  id: number;
  device_id: number | null;
  device_name: string;
  status: JobStatus;
  attempts: number;
  started_at: string | null;
  finished_at: string | null;
  result: Record<string, unknown> | null;
  error: string | null;
  reason: string | null;
}

export interface JobDetail extends Job {
  devices: JobDevice[];
  next_after: number | null;
}

export interface Selection {
  devices?: number[];
  names?: string[];
  tags?: string[];
  groups?: string[];
  all?: boolean;
}

export interface Image {
  id: string;
  name: string;
  kind: "cd" | "floppy";
  size: number;
  received: number;
  state: "uploading" | "ready";
  sha256: string | null;
  expected_sha256: string | null;
  created_at: string;
  created_by: string | null;
  in_use: boolean;
}

export interface BootRun {
  id: string;
  device_id: number;
  device_name: string;
  image_id: string;
  image_name: string;
  image_size: number;
  kind: "cd" | "floppy";
  boot: boolean;
  state: "connecting" | "serving" | "booting" | "done" | "failed" | "cancelled";
  started_by: string;
  started_at: string;
  finished_at: string | null;
  outcome: string | null;
  error_code: string | null;
  error: string | null;
  commands: number;
  reads: number;
  bytes_sent: number;
  throughput: number;
  console: string[];
  console_note: string | null;
}

export interface AuditEntry {
  id: number;
  at: string;
  actor: string | null;
  via: string;
  client: string | null;
  action: string;
  outcome: string;
  status_code: number | null;
  detail: Record<string, unknown>;
  device_count: number;
  devices: number[];
}

/** Start an operation (a job) on a selection of devices. */
export function operate(operation: string, target: Selection, params: unknown): Promise<Job> {
  return post<Job>(`/api/operations/${operation}`, { target, params });
}
