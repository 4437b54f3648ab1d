// Fisher-Yates shuffle with a seeded generator (seedrandom), shared by the Pick-a-Pic split, the preference
// training's reference draws and the evaluation's candidate sets.

/** A shuffled copy of xs; rng() in [0, 1). */
export function shuffle<T>(xs: readonly T[], rng: () => number): T[] {
  const a = [...xs];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}
