// broker: the stable rendezvous of broker mode. Binds one ROUTER per stage; ingests and every
// replica of every stage connect to it. Jobs wait in one FIFO per hop and go to replicas by
// credit; results go home to the ingest that holds the client.
import { Broker } from '../src/broker/broker.js';
import { observeBroker } from '../src/metrics/broker-metrics.js';
import { runStage } from '../src/stage/setup.js';

await runStage('broker', async (ctx) => {
  const broker = new Broker(ctx.config, ctx.log);
  observeBroker(broker);
  ctx.onClose(() => broker.close());
  const endpoints = await broker.bind();
  ctx.ready({ ...endpoints, heartbeat_ms: ctx.config.broker.heartbeat_ms });
  await broker.run(ctx.signal);
  ctx.log.info(broker.stats, 'broker stopped');
});
