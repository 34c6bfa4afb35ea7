// example/word_count: count the words of a text, with the Node SDK (sdk/typescript).
import { BlockError, run } from "../../index.mjs";

run((request) => {
  const { field = "", top = 0 } = request.config;
  const text = field ? request.input?.[field] : request.input;
  if (typeof text !== "string") {
    throw new BlockError(`expected text at ${field || "the input"}, got ${typeof text}`, {
      details: { field },
    });
  }
  const words = text.toLowerCase().match(/[\p{L}\p{N}']+/gu) ?? [];
  console.log(`counting ${words.length} words`); // goes to the node's log
  const counts = new Map();
  for (const word of words) counts.set(word, (counts.get(word) ?? 0) + 1);
  const frequent = [...counts.entries()]
    .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
    .slice(0, top)
    .map(([word, count]) => ({ word, count }));
  return top ? { words: words.length, top: frequent } : { words: words.length };
});
