// Types for scripts/eslint-silent-catch.mjs (plain JavaScript: eslint.config.js loads it as is).
import type { ESLint, Rule } from "eslint";
export declare const silentCatch: Rule.RuleModule;
export declare const lanekeeperPlugin: ESLint.Plugin;
