import { ApiError, type HttpServer } from "./http-server.js";
import type { SimGpio } from "../io/gpio/sim-gpio.js";
import { GpioError } from "../io/gpio/gpio.js";
import { lineKey } from "../io/gpio/lines.js";

/** Drives the simulated hardware (sim mode only). */
export function registerSimRoutes(http: HttpServer, gpio: SimGpio): void {
  http.route(
    "POST",
    "/api/sim/inputs/:laneId/:input",
    async ({ params, json, send }) => {
      const body = await json<{ level?: unknown }>();
      const level = body?.level;
      if (level !== 0 && level !== 1) throw new ApiError(400, "E_LEVEL", "level must be 0 or 1");
      try {
        gpio.setInput(lineKey(params.laneId ?? "", params.input ?? ""), level);
      } catch (error) {
        if (error instanceof GpioError) throw new ApiError(404, error.code, error.message);
        throw error;
      }
      send(200, { ok: true });
    },
    { access: "token" },
  );
  http.route("GET", "/api/sim/outputs", ({ send }) => send(200, { outputs: gpio.outputs(), inputs: gpio.inputs(), history: gpio.outputHistory().slice(-100) }));
}
