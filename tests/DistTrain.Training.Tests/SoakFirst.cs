using Xunit.Abstractions;

namespace DistTrain.Training.Tests;

/// <summary>
/// Runs the GC-stress soak (collection <see cref="Name"/>) before every other collection of this assembly. Run after the
/// 86 tests before it in CI on 2026-12-04, it hung with the training thread inside a libtorch call and the forcing
/// thread spinning in the runtime's GC; run first (and alone) it passes in ~17 s. The cause was not found in that
/// session; docs/reliability.md records it as open.
/// </summary>
public sealed class SoakFirst : ITestCollectionOrderer
{
    public const string Name = "gc-soak (runs first)";

    public IEnumerable<ITestCollection> OrderTestCollections(IEnumerable<ITestCollection> testCollections) =>
        testCollections.OrderBy(c => c.DisplayName == Name ? 0 : 1).ThenBy(c => c.DisplayName, StringComparer.Ordinal);
}
