// Starting and resuming a drain on a running server (DESIGN §1 "Draining"): the side effects around
// the Drain state machine of drain.ts — refuse new connections from clients (pool peers still get in),
// hand users over, end what is left at the timeout, log and publish each change.
import type { Logger } from 'pino';
import type { Clock } from '../shared/clock.ts';
import type { SipTransport } from '../sip/transport.ts';
import type { LocationService } from '../registrar/location.ts';
import type { DialogCounter } from './dialogs.ts';
import { Drain, type DrainCause, type DrainLeft, type DrainProgress } from './drain.ts';
import type { Handover } from './handover.ts';
import type { PoolView } from './pool-view.ts';
import type { RegistrarService } from './registrar-service.ts';
import type { EdgeDrainWork } from './server.ts';
import type { OwnState } from './status.ts';

export interface DrainControlOptions {
  clock: Clock;
  logger: Logger;
  transport: SipTransport;
  location: LocationService;
  dialogs: DialogCounter;
  handover: Handover;
  registrar: Pick<RegistrarService, 'deactivate'>;
  view: () => PoolView;
  setOwnState: (state: OwnState) => void;
  /** The published topology left this server out (it cannot resume then). */
  removedFromTopology: () => boolean;
  /** Something liveness reports carry changed. */
  changed: () => void;
  /** An Edge: its remote users are what is left and what is handed over (src/edge/). */
  edge?: EdgeDrainWork;
}

export class DrainControl {
  private drain: Drain | null = null;

  constructor(private readonly options: DrainControlOptions) {}

  /** The current (or last) drain's progress; null when this server never drained. */
  progress(): DrainProgress | null {
    return this.drain?.progress() ?? null;
  }

  get phase(): Drain['phase'] | undefined {
    return this.drain?.phase;
  }

  get cause(): DrainCause | undefined {
    return this.drain?.cause;
  }

  /**
   * Starts draining: no new connections from clients (servers of the topology still get in), 302 for new
   * out-of-dialog requests (the drain step), users handed to their next servers in batches, dialogs
   * left to end; drained when nothing is left or at `settings.drain.timeoutMs`. Idempotent.
   */
  start(cause: DrainCause): void {
    if (this.drain && this.drain.phase !== 'resumed') return;
    const { clock, logger, handover, transport } = this.options;
    const view = this.options.view();
    this.options.setOwnState('draining');
    transport.stopAccepting({
      // Servers of the topology still get in: pool peers (heartbeat, in-dialog requests through our
      // Record-Route) and other pools' servers (calls in progress between pools, their in-dialog
      // requests) — recognised as everywhere else (peer-identity.ts): by certificate over TLS links.
      except: (candidate) => this.options.view().originOf(candidate).kind !== 'client',
    });
    const edge = this.options.edge;
    const handedOverBefore = edge ? edge.handedOver() : handover.handedOver('drain');
    const intervalMs = view.topology.settings.heartbeat.intervalMs;
    const timeoutMs = view.topology.settings.drain.timeoutMs;
    this.drain = new Drain({
      clock,
      cause,
      timeoutMs,
      checkIntervalMs: Math.min(intervalMs, 1000),
      left: () => this.left(),
      handedOver: () => (edge ? edge.handedOver() : handover.handedOver('drain')) - handedOverBefore,
      endLeft: () => this.endLeft(),
      onDrained: (progress) => {
        this.options.setOwnState('drained');
        logger.info({ cause: progress.cause, startedAt: new Date(progress.startedAtMs).toISOString(), finishedAt: new Date(progress.finishedAtMs ?? 0).toISOString(), handedOver: progress.handedOver, timedOut: progress.timedOut, endedAtTimeout: progress.endedAtTimeout }, 'drain: drained');
        this.options.changed();
      },
    });
    const left = this.left();
    logger.info({ cause, startedAt: new Date(clock.nowMs()).toISOString(), bindings: left.bindings, dialogs: left.dialogs, timeoutMs }, 'drain: started');
    if (edge) edge.start();
    else handover.reconcile('drain');
    this.drain.check();
    this.options.changed();
  }

  /** Back to active (the operator resumed): accept again; peers see `active` and send the users back in batches. */
  resume(): void {
    if (!this.drain || this.drain.phase === 'resumed' || this.options.removedFromTopology()) return;
    this.drain.resume();
    this.options.edge?.cancel();
    this.options.setOwnState('active');
    this.options.transport.startAccepting();
    this.options.logger.info({ resumedAt: new Date(this.options.clock.nowMs()).toISOString() }, 'drain: resumed');
    this.options.changed();
  }

  /** The server stops: the drain's timers go. */
  stop(): void {
    this.drain?.resume();
    this.options.edge?.cancel();
  }

  private left(): DrainLeft {
    return { bindings: this.options.edge ? this.options.edge.left() : this.options.location.counts().bindings, dialogs: this.options.dialogs.active() };
  }

  /** The drain timed out: end every binding (deactivated NOTIFY), forget the dialogs and close client flows. */
  private endLeft(): DrainLeft {
    const left = this.left();
    const view = this.options.view();
    for (const user of [...this.options.location.users()]) this.options.registrar.deactivate(user);
    this.options.edge?.endLeft();
    this.options.dialogs.endAll();
    for (const flow of this.options.transport.flows()) if (view.originOf(flow).kind !== 'peer') flow.close('local', 'drain timed out');
    this.options.logger.warn({ bindings: left.bindings, dialogs: left.dialogs }, 'drain: timed out; ended what was left');
    return left;
  }
}
