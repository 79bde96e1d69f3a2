// Who is signed in and what their role allows: the page shows an action only when the permission is there
// (the server checks every request anyway; hiding is for clarity, not for security).

import { csrfToken, get, type Me } from "./api";

let current: Me | null = null;

export function me(): Me | null {
  return current;
}

export function can(permission: string): boolean {
  return current?.permissions.includes(permission) ?? false;
}

export async function loadMe(): Promise<Me | null> {
  if (!csrfToken()) {
    // no session cookies at all (they are set together at sign-in): do not ask to be told so
    current = null;
    return null;
  }
  try {
    current = await get<Me>("/api/auth/me");
  } catch {
    current = null;
  }
  return current;
}

export function forget(): void {
  current = null;
}

export const P = {
  deviceRead: "device.read",
  deviceWrite: "device.write",
  power: "device.power",
  boot: "device.boot",
  inventory: "device.inventory",
  logs: "device.logs",
  alarms: "device.alarms",
  consent: "device.consent",
  features: "device.features",
  redirect: "device.redirect",
  jobRead: "job.read",
  jobCancel: "job.cancel",
  scheduleRead: "schedule.read",
  scheduleWrite: "schedule.write",
  auditRead: "audit.read",
  userAdmin: "user.admin",
} as const;
