export * from "./normalise.js";
export * from "./match.js";
