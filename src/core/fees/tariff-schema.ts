import { z } from "zod";

/**
 * The tariff format. Owned by the fee engine (src/core/fees); the config schema embeds it.
 * This first version accepts any object so the rest of the config can be checked; the fee
 * engine's schema replaces it.
 */
export const tariffSchema = z.looseObject({ name: z.string().optional() });
export type Tariff = z.infer<typeof tariffSchema>;
