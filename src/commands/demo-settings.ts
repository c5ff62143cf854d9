/** What `demo` runs, apart from the demo itself so that `help` prints the same numbers without loading it. */
export const DEMO = { guests: 300, nodes: 4, syncSeconds: 5, churnSeconds: 3 };
