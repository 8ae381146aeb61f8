// @ts-check
// The one import of libsodium-wrappers-sumo (vendored, see frontend/vendor/README.md).
// Await `ready` before any other call.
import vendored from "../../vendor/libsodium-wrappers.mjs";

// The vendored file is minified JavaScript; its types are the declarations the same
// release (0.8.4) ships on npm, a devDependency used for type checking only.
/** @type {typeof import("libsodium-wrappers-sumo").default} */
const sodium = /** @type {any} */ (vendored);

export const ready = sodium.ready;
export default sodium;
