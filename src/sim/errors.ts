/** The simulator's error the command line reports, apart from the server so that the report does not load it. */

/** The simulator's port cannot be had (taken, or privileged); the message says which option fixes it. */
export class SimulatorPortError extends Error {
  constructor(host: string, port: number, cause: NodeJS.ErrnoException) {
    super(
      cause.code === 'EADDRINUSE'
        ? `the simulator cannot listen on ${host}:${port}: the port is in use; choose another with --port N, or --port 0 for a free one`
        : `the simulator cannot listen on ${host}:${port}: the port needs privileges this user lacks (${cause.code}); choose one above 1023 with --port N, or --port 0 for a free one`,
      { cause },
    );
    this.name = 'SimulatorPortError';
  }
}
