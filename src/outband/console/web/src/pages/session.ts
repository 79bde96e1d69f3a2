// Opening a console WebSocket for SOL or KVM: a single-use ticket from a POST (which carries the CSRF token),
// then the socket, which says {"type": "status"}, then {"type": "open"} or {"type": "error", code, message}.

import { post } from "../api";

export interface Ticket {
  ticket: string;
  expires_in: number;
  url: string;
}

export interface Refusal {
  code: string;
  message: string;
}

export const REFUSAL_HELP: Record<string, string> = {
  consent: "Ask for the user's consent on the Consent tab, then enter the code the device shows.",
  busy: "Someone else has this session open on the device; AMT allows one at a time.",
  disabled: "Switch the feature on in the Settings tab.",
  unreachable: "Check that the device is powered and its redirection port (16994/16995) is reachable.",
  auth: "The device refused the console's stored credentials; fix them in the device's settings.",
  forbidden: "Your role does not allow remote sessions.",
};

/** Open the socket; resolves once the device session is open, rejects with the refusal otherwise. */
export async function openSocket(deviceId: number, kind: "sol" | "kvm",
                                 onStatus: (text: string) => void): Promise<WebSocket> {
  const issued = await post<Ticket>(`/api/devices/${deviceId}/redirect-tickets`, { kind });
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const socket = new WebSocket(`${scheme}//${location.host}${issued.url}?ticket=${encodeURIComponent(issued.ticket)}`);
  socket.binaryType = "arraybuffer";
  return new Promise((resolve, reject) => {
    let settled = false;
    socket.onmessage = (event) => {
      if (typeof event.data !== "string") return;
      const message = JSON.parse(event.data) as { type: string; code?: string; message?: string; state?: string };
      if (message.type === "status") onStatus("Connecting to the device…");
      else if (message.type === "open") {
        settled = true;
        socket.onmessage = null;
        socket.onclose = null;
        resolve(socket);
      } else if (message.type === "error") {
        settled = true;
        reject({ code: message.code ?? "error", message: message.message ?? "refused" } satisfies Refusal);
      }
    };
    socket.onclose = (event) => {
      if (!settled) reject({ code: "closed", message: event.reason || `the connection closed (${event.code})` });
    };
  });
}

export function refusalText(refusal: unknown): string {
  if (refusal && typeof refusal === "object" && "code" in refusal) {
    const { code, message } = refusal as Refusal;
    const sentence = /[.!?]$/.test(message) ? message : `${message}.`;
    return `${sentence}${REFUSAL_HELP[code] ? ` ${REFUSAL_HELP[code]}` : ""}`;
  }
  return refusal instanceof Error ? refusal.message : String(refusal);
}
