// How values are written out for reading.

/** Groups a fingerprint in fours for reading aloud. */
export function spaced(hex: string): string {
  return hex.toUpperCase().replace(/(.{4})/g, "$1 ").trim();
}
