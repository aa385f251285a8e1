// Exit codes of the dnslb command, the same for every verb.
export const EXIT_OK = 0;
/** The input (topology, arguments' values) is invalid. */
export const EXIT_INVALID = 1;
/** The command line itself is wrong (unknown verb, missing argument). */
export const EXIT_USAGE = 2;
/** Something failed while running (I/O, a peer, the store). */
export const EXIT_RUNTIME = 3;
