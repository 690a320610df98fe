using DistTrain.Contracts.Specs;

namespace DistTrain.Contracts.Tests.Specs;

/// <summary>Run order and cycle reports for the stage DAG.</summary>
public sealed class StageGraphTests
{
    private static JobSpec Load(string stages)
    {
        var result = SpecParser.Parse(SpecText.Job(stages));
        Assert.True(result.Ok, SpecText.Describe(result.Errors));
        return result.Spec!;
    }

    [Fact]
    public void Ties_go_to_the_stage_declared_first()
    {
        var spec = Load("""
              - {name: x, kind: pretrain, needs: [z]}
              - {name: y, kind: pretrain}
              - {name: z, kind: pretrain}
              - {name: w, kind: pretrain, needs: [x, y]}
            """);
        Assert.Equal(new[] { "y", "z", "x", "w" }, StageGraph.TopologicalOrder(spec).Select(s => s.Name));
    }

    [Fact]
    public void Inputs_are_implicit_dependencies()
    {
        var spec = Load("""
              - {name: ft, kind: finetune, inputs: {init: pre}, objective: {kind: classification, task: genre}}
              - {name: pre, kind: pretrain}
            """);
        Assert.Equal(new[] { "pre", "ft" }, StageGraph.TopologicalOrder(spec).Select(s => s.Name));
    }

    [Fact]
    public void Brown_example_runs_in_file_order()
    {
        var spec = JobSpecs.LoadFile(SpecText.ExamplePath("brown-pipeline.yaml")).Spec!;
        Assert.Equal(spec.Stages.Select(s => s.Name), StageGraph.TopologicalOrder(spec).Select(s => s.Name));
    }

    [Fact]
    public void Order_refuses_a_cycle_and_the_validator_names_it()
    {
        var spec = Load("""
              - {name: a, kind: pretrain, needs: [b]}
              - {name: b, kind: pretrain, needs: [a]}
              - {name: c, kind: pretrain, needs: [c]}
            """);
        Assert.Throws<InvalidOperationException>(() => StageGraph.TopologicalOrder(spec));
        var errors = SpecValidator.Validate(spec);
        Assert.Contains(new SpecError("stages[0]", "dependency cycle: a -> b -> a"), errors);
        Assert.Contains(new SpecError("stages[2].needs[0]", "a stage cannot depend on itself"), errors);
    }
}
