import type { Reply } from '../protocol/types.js';

/** One reply as a person reads it: a header line, then one line per detection. */
export function formatReply(name: string, reply: Reply): string {
  if (!reply.ok) return `${name}: error ${reply.error.code}: ${reply.error.message}`;
  const total = reply.timings_ms.total;
  const lines = [`${name}: ${reply.width}×${reply.height}, ${reply.detections.length} detection(s)${total !== undefined ? `, ${total} ms` : ''}`];
  for (const d of reply.detections) {
    const box = `[${d.box.map((v) => Math.round(v)).join(', ')}]`;
    if (d.text !== undefined) {
      lines.push(`  "${d.text}"  (${(d.text_score ?? d.score).toFixed(2)})  ${box}`);
    } else {
      const top = d.classes?.[0] ? `  → ${d.classes[0].label} ${d.classes[0].score.toFixed(2)}` : '';
      lines.push(`  ${d.label} ${d.score.toFixed(2)}  ${box}${top}`);
    }
  }
  return lines.join('\n');
}
