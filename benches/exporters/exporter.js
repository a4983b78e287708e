// The prom-client exporter of run.sh: the 100 bench series (see plimsoll.rs for what they
// hold) in a fresh Registry (no default metrics), served by Node's http module with
// `await registry.metrics()` per request, as prom-client's documentation shows. The
// bucket bounds are the ones Plimsoll serves for its default buckets (see prometheus.rs).
//
// Binds 127.0.0.1 port 0, prints `listening on <address>` and serves until killed.
'use strict';

const http = require('node:http');
const client = require('prom-client');

const SHARDS = Array.from({ length: 10 }, (_, v) => `s${v}`);
const OBSERVATIONS = [0.003, 0.007, 0.015, 0.03, 0.07, 0.15, 0.3, 0.7, 1.5, 3.0];
const BUCKETS = [
  0.005065779510355506, 0.010131559020711013, 0.025163911436707098, 0.050327822873414196, 0.10065564574682839,
  0.25, 0.5, 1.0, 2.5936791093020193, 5.187358218604039, 10.374716437208077,
];

const registry = new client.Registry();
for (let f = 0; f < 9; f++) {
  const counters = new client.Counter({
    name: `bench_events_${f}_total`,
    help: 'Bench events.',
    labelNames: ['shard'],
    registers: [registry],
  });
  SHARDS.forEach((shard, v) => counters.inc({ shard }, 1000 * (f + 1) + v));
}
const latency = new client.Histogram({
  name: 'bench_latency_seconds',
  help: 'Bench latency.',
  labelNames: ['shard'],
  buckets: BUCKETS,
  registers: [registry],
});
SHARDS.forEach((shard, v) => {
  for (let i = 0; i < 10 + v; i++) {
    latency.observe({ shard }, OBSERVATIONS[(i + v) % 10]);
  }
});

const server = http.createServer(async (request, response) => {
  if (request.url !== '/metrics') {
    response.statusCode = 404;
    response.end('not found\n');
    return;
  }
  try {
    response.setHeader('Content-Type', registry.contentType);
    response.end(await registry.metrics());
  } catch (error) {
    response.statusCode = 500;
    response.end(String(error));
  }
});
server.listen(0, '127.0.0.1', () => {
  const { address, port } = server.address();
  console.log(`listening on ${address}:${port}`);
});
