import { ReplyRouter } from '../transport/reply-router.js';
import { bindOrFail, pullSocket } from '../transport/sockets.js';
import { hopOptions, workerLink } from './forward-stage.js';
import type { PipeOptions } from './run-pipe.js';
import type { StageContext } from './setup.js';
import type { SinkOutput } from './sink-processor.js';

export type SinkIo = Pick<PipeOptions<SinkOutput>, 'input' | 'emit' | 'dropped'>;

/**
 * Where the sink takes jobs from and sends replies to: in direct mode its bound PULL and one
 * PUSH per ingest origin; in broker mode the broker, which carries each result home.
 * Registers cleanup and announces ready with `facts`.
 */
export async function openSink(ctx: StageContext, concurrency: number, facts: Record<string, unknown>): Promise<SinkIo> {
  const { transport: t } = ctx.config;
  const hop = hopOptions(ctx);
  if (t.mode === 'broker') {
    const link = workerLink(ctx, 'sink', concurrency);
    ctx.onClose(() => link.close());
    link.start();
    ctx.ready({ broker: ctx.config.broker.sink, replica: link.name, ...facts });
    return { input: link, emit: (out) => link.finish([Buffer.from(out.origin), ...out.frames]), dropped: (frames) => link.release(frames[0]) };
  }
  const input = pullSocket(hop);
  const replies = new ReplyRouter(hop, ctx.log);
  ctx.onClose(async () => {
    input.close();
    await replies.close(hop.lingerMs);
  });
  await bindOrFail(input, t.sink, 'sink input', hop.curve, ctx.log);
  ctx.ready({ input: t.sink, ...facts });
  return { input, emit: (out) => replies.send(out.origin, out.frames) };
}
