import type { Clock } from "../../kernel/clock.js";
import type { Logger } from "../../kernel/log.js";
import type { SerialDeviceKind, SerialPortSettings } from "./config.js";
import type { SerialLink } from "./serial-link.js";
import { SerialPortLink, type SerialPortLinkOptions } from "./serialport-link.js";
import { SimSerialLink } from "./sim-serial-link.js";

/** Devices that only listen: nothing comes back from them, so silence means nothing. */
const listenOnly: ReadonlySet<SerialDeviceKind> = new Set(["display", "sign"]);

/**
 * Real link when the device has a `path`, simulated twin otherwise (docs/architecture.md
 * "Layers": chosen by configuration, never by NODE_ENV). Pass the device config as parsed (its `kind`
 * turns the silence watchdog off for displays and signs).
 */
export function createSerialLink(
  name: string,
  device: SerialPortSettings & { kind?: SerialDeviceKind },
  clock: Clock,
  log: Logger,
  options: SerialPortLinkOptions = {},
): SerialLink {
  const silenceTimeoutS = device.kind && listenOnly.has(device.kind) ? 0 : device.silenceTimeoutS;
  const settings = { path: device.path, baudRate: device.baudRate, dataBits: device.dataBits, parity: device.parity, stopBits: device.stopBits, silenceTimeoutS };
  if (device.path !== undefined) return new SerialPortLink(name, { ...settings, path: device.path }, clock, log, options);
  return new SimSerialLink(name, clock, log, { silenceTimeoutS });
}
