import fc from "fast-check";

/**
 * Versions as one box wrote them and as another received them: the same versions in any
 * order, some of them delivered again (a broker's retained set, a redelivery after a
 * reconnect). `[written, delivered]`.
 */
export function anyDeliveryOrder<T>(version: fc.Arbitrary<T>): fc.Arbitrary<[T[], T[]]> {
  return fc
    .array(version, { minLength: 1, maxLength: 30 })
    .chain((versions) =>
      fc
        .tuple(fc.shuffledSubarray(versions, { minLength: versions.length, maxLength: versions.length }), fc.array(fc.nat(versions.length - 1), { maxLength: 10 }))
        .map(([shuffled, repeats]): [T[], T[]] => [versions, [...shuffled, ...repeats.map((i) => versions[i]!)]]),
    );
}
