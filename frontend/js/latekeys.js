// @ts-check
/**
 * Messages refused for want of a key, opened again as the key arrives: a newcomer's
 * device gets the keys when a colleague's device shares them, which may finish while,
 * or a few seconds after, the history page is read.
 */
/** @import { Message, Refusal } from "./types/api.js" */

/** After the first try: 1, 2, 4 and 8 s later, while some are still refused. */
const WAITS_MS = [1000, 2000, 4000, 8000];

/**
 * Opens the page's refused messages again once at once (awaited), then in the background.
 * @param {Message[]} messages the page's messages
 * @param {(seq: number) => {error: unknown} | undefined} entry what the thread holds for a seq
 * @param {(message: Message) => Promise<unknown>} open opens (and stores) one message again
 */
export async function openWhenKeysArrive(messages, entry, open) {
  const pass = async () => {
    const late = messages.filter((m) => /** @type {Refusal | null} */ (entry(m.seq)?.error)?.code === "no_room_key");
    for (const message of late) await open(message);
    return late.length > 0;
  };
  if (!(await pass())) return;
  void (async () => {
    for (const wait of WAITS_MS) {
      await new Promise((resolve) => setTimeout(resolve, wait));
      if (!(await pass())) return;
    }
  })();
}
