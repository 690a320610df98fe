using System.Text;
using DistTrain.Contracts.Specs;

namespace DistTrain.Contracts.Tests.Specs;

/// <summary>Garbage in, errors out: random bytes and mutated examples never throw and never fail silently.</summary>
public sealed class FuzzTests
{
    private static void AssertHandled(string text)
    {
        var result = JobSpecs.Load(text);
        if (result.Spec is null) Assert.NotEmpty(result.Errors);
        // "unreadable spec" is the parser's last-resort catch: reaching it means a crash we did not foresee.
        Assert.DoesNotContain(result.Errors, e => e.Message.StartsWith("unreadable spec", StringComparison.Ordinal));
        if (result.Spec is not null) QuickTransform.Apply(result.Spec);
    }

    [Fact]
    public void Random_bytes_yield_errors()
    {
        var rng = new Random(1234);
        for (int i = 0; i < 300; i++)
        {
            var bytes = new byte[rng.Next(0, 200)];
            rng.NextBytes(bytes);
            AssertHandled(Encoding.UTF8.GetString(bytes));
        }
    }

    [Fact]
    public void Mutated_examples_yield_errors_or_valid_specs()
    {
        var rng = new Random(99);
        var seeds = new[] { "brown-pipeline.yaml", "assistant-pipeline.yaml" }.Select(f => File.ReadAllText(SpecText.ExamplePath(f))).ToArray();
        const string alphabet = " :-[]{},\n#&*!|>'\"0123456789abcxyz.~";
        for (int i = 0; i < 400; i++)
        {
            var text = new StringBuilder(seeds[i % seeds.Length]);
            for (int m = rng.Next(1, 6); m > 0 && text.Length > 0; m--)
            {
                int at = rng.Next(text.Length);
                switch (rng.Next(3))
                {
                    case 0: text.Remove(at, Math.Min(rng.Next(1, 20), text.Length - at)); break;
                    case 1: text.Insert(at, alphabet[rng.Next(alphabet.Length)]); break;
                    default: text[at] = alphabet[rng.Next(alphabet.Length)]; break;
                }
            }
            AssertHandled(text.ToString());
        }
    }

    [Fact]
    public void Hand_built_extremes_do_not_throw()
    {
        var spec = JobSpecs.LoadFile(SpecText.ExamplePath("brown-pipeline.yaml")).Spec!;
        var s = spec.Stages[0];
        var extreme = s with
        {
            Model = s.Model with { Hidden = int.MaxValue, Heads = 0, Layers = int.MinValue, VocabSize = int.MaxValue, EmbeddingSize = -1 },
            Train = s.Train with { BatchSize = int.MaxValue, MicroBatches = 0 },
            Distributed = s.Distributed with { MinWorkers = 1, MaxWorkers = int.MaxValue },
            Kind = (StageKind)99,
        };
        var errors = SpecValidator.Validate(spec with { Stages = [extreme, .. spec.Stages.Skip(1)] });
        Assert.NotEmpty(errors);
        QuickTransform.Apply(spec with { Stages = [extreme] });
    }
}
