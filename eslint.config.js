// ESLint for Rounds' browser client (frontend/js): plain ES modules run as they are,
// so the checks are the recommended rules plus the few that catch mistakes the type
// check (tsconfig.json) does not. `make lint-js` runs both.
import js from "@eslint/js";
import globals from "globals";

export default [
  {
    // Vendored libraries are checked by their upstream, not here (frontend/vendor/README.md).
    ignores: ["frontend/vendor/**", "node_modules/**", "var/**", ".venv/**"],
  },
  js.configs.recommended,
  {
    files: ["frontend/js/**/*.js"],
    languageOptions: {
      ecmaVersion: 2024,
      sourceType: "module",
      globals: { ...globals.browser },
    },
    linterOptions: { reportUnusedDisableDirectives: "error" },
    rules: {
      eqeqeq: ["error", "always", { null: "ignore" }],
      "no-unused-vars": ["error", { args: "after-used", argsIgnorePattern: "^_", caughtErrors: "none" }],
      "no-var": "error",
      "prefer-const": "error",
      "no-implied-eval": "error",
      "no-new-func": "error",
      "no-eval": "error",
      "no-throw-literal": "error",
      "no-useless-assignment": "error",
    },
  },
  {
    files: ["frontend/js/workers/**/*.js"],
    languageOptions: { globals: { ...globals.worker } },
  },
  {
    files: ["eslint.config.js"],
    languageOptions: { sourceType: "module", globals: { ...globals.node } },
  },
];
