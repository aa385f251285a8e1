// How a long-running dnslb process (a SIP server, the DNS server) learns that it should stop: SIGTERM
// (the supervisor, systemd, `kill`) or SIGINT (Ctrl-C). The first of them starts the orderly stop;
// the handlers are removed, so a second one ends the process at once with node's default action.
import type { Logger } from 'pino';

/** Resolves with the signal's name at the first SIGTERM or SIGINT, after logging `message` with it. */
export function untilStopSignal(logger: Logger, message: string): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const stop = (signal: NodeJS.Signals): void => {
      logger.info({ signal }, message);
      process.off('SIGTERM', stop);
      process.off('SIGINT', stop);
      resolve(signal);
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  });
}
