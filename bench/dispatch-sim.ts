// What a dispatcher could do at best, so that a measured p99 can be read against a bound instead
// of against a wish. Two ingredients: arrival schedules (the same sequence is offered to every
// pool, so pools are compared on identical load) and a simulation of two dispatch policies on
// replicas with fixed service times, without any plumbing cost.

/** Arrival offsets in ms from the start: evenly paced (a camera's frame clock) or Poisson (many independent senders). */
export type Arrivals = 'paced' | 'poisson';

/** A small seeded generator (mulberry32), so every pool sees the same Poisson sequence. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function schedule(arrivals: Arrivals, rate: number, count: number, seed = 1): number[] {
  const gap = 1000 / rate;
  if (arrivals === 'paced') return Array.from({ length: count }, (_, i) => i * gap);
  const next = random(seed);
  const out: number[] = [];
  let t = 0;
  for (let i = 0; i < count; i++) {
    out.push(t);
    t += -Math.log(1 - next()) * gap;
  }
  return out;
}

/**
 * Latencies (ms) of each arrival under a policy, with replica i taking exactly `serviceMs[i]` per
 * job, one at a time:
 * - `earliest-finish`: each job goes to the replica that would finish it first given what it
 *   already holds (the broker's rule, with perfect knowledge and no plumbing);
 * - `round-robin`: job k goes to replica k mod n and waits its turn there (plain PUSH).
 * Real replicas vary around their average, so near saturation they queue more than this.
 */
export function simulate(arrivalsMs: number[], serviceMs: number[], policy: 'earliest-finish' | 'round-robin'): number[] {
  const freeAt = serviceMs.map(() => 0);
  return arrivalsMs.map((t, k) => {
    let pick = k % serviceMs.length;
    if (policy === 'earliest-finish') {
      for (let i = 0; i < serviceMs.length; i++) {
        if (Math.max(freeAt[i]!, t) + serviceMs[i]! < Math.max(freeAt[pick]!, t) + serviceMs[pick]!) pick = i;
      }
    }
    freeAt[pick] = Math.max(freeAt[pick]!, t) + serviceMs[pick]!;
    return freeAt[pick]! - t;
  });
}

/**
 * The share of jobs that one replica taking `serviceMs` per job cannot finish within `boundMs`
 * of their arrival, when it takes only the jobs it can finish in time (FIFO) and turns the rest
 * away. For jobs of one size with one relative deadline no order finishes more of them in time,
 * so where every other replica is slower than the bound on its own, this is a floor under the
 * share of late jobs for ANY dispatcher: above 1 %, no dispatcher gets the p99 within the bound.
 */
export function lateShare(arrivalsMs: number[], serviceMs: number, boundMs: number): number {
  let freeAt = -Infinity;
  let late = 0;
  for (const t of arrivalsMs) {
    const finish = Math.max(freeAt, t) + serviceMs;
    if (finish - t <= boundMs) freeAt = finish;
    else late++;
  }
  return late / Math.max(1, arrivalsMs.length);
}
