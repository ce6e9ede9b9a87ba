// The agent container's main process: makes the slot's URLs work inside the
// container. Each "HOSTPORT=service:port" of KINFRA_FORWARD (space-separated)
// listens on 127.0.0.1:HOSTPORT and relays to the service on the slot network,
// so http://localhost:8001 reaches the slot's backend as it does on the host.
"use strict";
const net = require("net");

for (const spec of (process.env.KINFRA_FORWARD || "").split(/\s+/).filter(Boolean)) {
  const match = /^(\d+)=([^:]+):(\d+)$/.exec(spec);
  if (!match) {
    console.error(`kinfra-forward: ignoring ${spec}`);
    continue;
  }
  const [, listen, host, port] = match;
  const server = net.createServer((client) => {
    const upstream = net.connect(Number(port), host);
    client.pipe(upstream).pipe(client);
    client.on("error", () => upstream.destroy());
    upstream.on("error", () => client.destroy());
  });
  server.on("error", (err) => console.error(`kinfra-forward: ${listen}: ${err.message}`));
  server.listen(Number(listen), "127.0.0.1");
}
// Stay up (and quit on docker stop) even with nothing to forward.
setInterval(() => {}, 1 << 30);
process.on("SIGTERM", () => process.exit(0));
process.on("SIGINT", () => process.exit(0));
