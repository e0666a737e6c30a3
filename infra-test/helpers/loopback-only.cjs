// Preloaded (`node -r`) into an emulator that binds every interface on fixed ports (kinesis-local):
// every server it starts listens on 127.0.0.1 on a free port instead, and the parent process is told
// which port each one got, keyed by the port the emulator asked for.
const net = require('node:net');

const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  const callback = typeof args[args.length - 1] === 'function' ? args[args.length - 1] : undefined;
  const requested = typeof args[0] === 'object' && args[0] !== null ? args[0].port : args[0];
  this.once('listening', () => process.send?.({ requested: Number(requested), port: this.address().port }));
  return listen.call(this, { port: 0, host: '127.0.0.1' }, callback);
};
