// @ts-check
// My signed-in devices (docs/operations.md, "Devices: a lost phone"): each login with its name, when
// it was first and last seen and from which address. Signing another one out (a lost
// phone, a ward computer left signed in) revokes it on the server: its sockets close at
// once on every server process and its notifications stop.
import { api, get } from "./api.js";
import { t } from "./i18n.js";
import { h, explain, fullTime } from "./ui.js";

/**
 * @typedef {{id: number, device_name: string, created_at: string, last_seen_at: string,
 *   ip: string | null, current: boolean}} Device
 */

/** The profile's card of my devices, loaded as it is shown. */
export function devicesCard() {
  const list = h("ul", { class: "list", id: "my-devices", "aria-label": t("My signed-in devices") });
  const error = h("p", { class: "error", role: "alert" });
  const draw = async () => {
    try {
      /** @type {Device[]} */
      const devices = await get("/api/auth/devices");
      list.replaceChildren(...devices.map((device) => h("li", { class: "card stack", dataset: { device: device.id } },
        h("strong", {}, device.device_name || t("Unknown device")),
        h("div", { class: "sub" }, t("First seen {time}", { time: fullTime(device.created_at) })),
        h("div", { class: "sub" }, t("Last seen {time}", { time: fullTime(device.last_seen_at) })
          + (device.ip ? ` · ${device.ip}` : "")),
        device.current
          ? h("span", { class: "tag" }, t("This device"))
          : h("button", { type: "button", class: "danger", onclick: () => revoke(device) }, t("Sign out this device")))));
    } catch (e) {
      error.textContent = explain(e);
    }
  };
  /** @param {Device} device */
  const revoke = async (device) => {
    error.textContent = "";
    try {
      await api("DELETE", `/api/auth/devices/${device.id}`);
      await draw();
    } catch (e) {
      error.textContent = explain(e);
    }
  };
  draw();
  return h("section", { class: "card stack", id: "my-devices-card" },
    h("h2", {}, t("My signed-in devices")),
    h("p", { class: "muted" }, t("Sign out a device you no longer use or have lost: it stops at once.")),
    list, error);
}
