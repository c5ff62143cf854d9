/** "Did you mean": the valid word a misspelt one was probably meant to be, for settings and their values. */

/** Edit distance (Levenshtein), for "did you mean" on a misspelt key. */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++)
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    previous = current;
  }
  return previous[b.length]!;
}

/** The valid word closest to a misspelt one, if it is close enough to be what was meant. */
export function nearestWord(word: string, candidates: readonly string[]): string | undefined {
  const lower = word.toLowerCase();
  let best: { candidate: string; distance: number } | undefined;
  for (const candidate of candidates) {
    const distance = editDistance(lower, candidate.toLowerCase());
    if (!best || distance < best.distance) best = { candidate, distance };
  }
  // A third of the word may be wrong (one slip in a short word): beyond that the guess misleads.
  if (best && best.distance <= Math.max(1, Math.floor(word.length / 3))) return best.candidate;
  // Or it is a longer or shorter form of a valid word ("warning" for "warn", "interval" for "intervalSeconds").
  return candidates.find(
    (c) =>
      Math.min(c.length, lower.length) >= 4 && (lower.startsWith(c.toLowerCase()) || c.toLowerCase().startsWith(lower)),
  );
}
