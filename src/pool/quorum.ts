// The quorum guard (DESIGN §3 "Spill and quorum"): Lync Server 2013's table of how many Front End
// servers of a pool must be running for the pool to work. An admin action that would leave fewer is refused unless forced.

/** Lync 2013: pool size → servers that must be running (2→1, 3–4→2, 5–6→3, 7→4, 8–9→4, 10–12→5). */
export function quorumOf(poolSize: number): number {
  if (poolSize <= 0) return 0;
  if (poolSize <= 2) return 1;
  if (poolSize <= 4) return 2;
  if (poolSize <= 6) return 3;
  if (poolSize <= 9) return 4;
  if (poolSize <= 12) return 5;
  // Beyond Lync's 12-server limit: keep the same proportion (a little over 40 %).
  return Math.ceil(poolSize * 5 / 12);
}

export interface QuorumCheck {
  allowed: boolean;
  poolSize: number;
  quorum: number;
  /** Servers that would be available after the action. */
  availableAfter: number;
  reason: string;
}

/**
 * Would taking `servers` out of service (drain, block, decommission, stop) leave the pool at or above quorum?
 * `available` are the servers available now (active, per heartbeat and admin state).
 */
export function checkQuorum(poolServers: readonly string[], available: ReadonlySet<string>, takenOut: readonly string[]): QuorumCheck {
  const poolSize = poolServers.length;
  const quorum = quorumOf(poolSize);
  const out = new Set(takenOut);
  const availableAfter = poolServers.filter((server) => available.has(server) && !out.has(server)).length;
  const allowed = availableAfter >= quorum;
  const reason = allowed
    ? `${availableAfter} of ${poolSize} servers stay available; quorum is ${quorum}`
    : `only ${availableAfter} of ${poolSize} servers would stay available, below the quorum of ${quorum} for a pool of ${poolSize} (Lync 2013 table); use --force to do it anyway`;
  return { allowed, poolSize, quorum, availableAfter, reason };
}
