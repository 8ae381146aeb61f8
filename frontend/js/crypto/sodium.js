// The one import of libsodium-wrappers-sumo (vendored, see frontend/vendor/README.md).
// Await `ready` before any other call.
import sodium from "../../vendor/libsodium-wrappers.mjs";

export const ready = sodium.ready;
export default sodium;
