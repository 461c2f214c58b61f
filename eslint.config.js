// Lint rules for lanekeeper. The TypeScript sources are linted with type information, so the
// rules that matter on a box that runs unattended can see promises: a floating promise is a
// rejection nobody hears, a promise handed to an event emitter is a crash waiting for an error.
import js from "@eslint/js";
import { defineConfig } from "eslint/config";
import globals from "globals";
import tseslint from "typescript-eslint";
import { lanekeeperPlugin } from "./scripts/eslint-silent-catch.mjs";

const typedFiles = ["src/**/*.ts", "test/**/*.ts", "bench/**/*.ts", "scripts/**/*.ts"];

/** no-restricted-imports for a file `depth` folders below the layer root: nothing may climb out. */
function stayInside(depth, message) {
  return {
    "no-restricted-imports": ["error", { patterns: [{ regex: `^(\\.\\./){${depth + 1},}`, message }] }],
  };
}

const kernelMessage = "src/kernel is the bottom layer: it imports node built-ins and packages, nothing else from src.";
const coreMessage = "src/core is pure: it imports only from src/core (and the few pure packages test/unit/core/purity.test.ts allows).";

export default defineConfig(
  {
    ignores: ["dist/**", "dist-check/**", "node_modules/**", "test-artifacts/**", "var/**", ".tmp/**"],
  },
  {
    linterOptions: { reportUnusedDisableDirectives: "error" },
  },
  {
    files: typedFiles,
    extends: [js.configs.recommended, tseslint.configs.base],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      // The compiler already reports undefined names and redeclarations, with types.
      "no-undef": "off",
      "no-redeclare": "off",
      "no-dupe-class-members": "off",
      "no-unused-vars": "off",
      // An empty catch must say why ignoring the error is safe: a comment inside it counts.
      "no-empty": ["error", { allowEmptyCatch: false }],
      // Input sanitisers look for control characters on purpose (plates, MQTT ids, camera lines).
      "no-control-regex": "off",
      "@typescript-eslint/no-floating-promises": [
        "error",
        {
          ignoreVoid: true,
          // node:test's test() and describe() return promises the runner itself awaits.
          allowForKnownSafeCalls: [{ from: "package", package: "node:test", name: ["test", "it", "describe", "suite", "before", "after", "beforeEach", "afterEach"] }],
        },
      ],
      "@typescript-eslint/no-misused-promises": "error",
      // Errors are Errors: a thrown or rejected string loses its stack and its code.
      "@typescript-eslint/only-throw-error": "error",
      "@typescript-eslint/prefer-promise-reject-errors": "error",
      "@typescript-eslint/no-for-in-array": "error",
      "@typescript-eslint/no-implied-eval": "error",
      "@typescript-eslint/no-array-delete": "error",
      "@typescript-eslint/no-duplicate-type-constituents": "error",
      "@typescript-eslint/await-thenable": "error",
      "@typescript-eslint/no-unnecessary-type-assertion": "error",
      "@typescript-eslint/no-unused-vars": ["error", { args: "after-used", argsIgnorePattern: "^_", varsIgnorePattern: "^_", caughtErrors: "none", ignoreRestSiblings: true }],
    },
  },
  {
    files: ["scripts/**/*.mjs", "eslint.config.js"],
    extends: [js.configs.recommended],
    languageOptions: { globals: globals.node },
    rules: { "no-empty": ["error", { allowEmptyCatch: false }] },
  },
  {
    files: ["panel/**/*.js"],
    extends: [js.configs.recommended],
    languageOptions: { globals: globals.browser },
    rules: { "no-empty": ["error", { allowEmptyCatch: false }] },
  },
  {
    // The same for a promise in the runtime: `.catch(() => undefined)` needs a comment saying why.
    // (Tests tear down with it freely; a missed error there fails the test anyway.)
    files: ["src/**/*.ts"],
    plugins: { lanekeeper: lanekeeperPlugin },
    rules: { "lanekeeper/silent-catch": "error" },
  },
  // Layering: the kernel (clock, log, lifecycle…) sits under everything; the core is pure.
  { files: ["src/kernel/*.ts"], rules: stayInside(0, kernelMessage) },
  { files: ["src/kernel/*/*.ts"], rules: stayInside(1, kernelMessage) },
  { files: ["src/core/*.ts"], rules: stayInside(0, coreMessage) },
  { files: ["src/core/*/*.ts"], rules: stayInside(1, coreMessage) },
  { files: ["src/core/*/*/*.ts"], rules: stayInside(2, coreMessage) },
);
