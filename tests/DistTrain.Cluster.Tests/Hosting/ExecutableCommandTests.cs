using DistTrain.Cluster.Hosting;

namespace DistTrain.Cluster.Tests.Hosting;

/// <summary>How `disttrain bench` hands the CLI to disttrain-bench: in front of the user's arguments, and back out intact.</summary>
public sealed class ExecutableCommandTests
{
    [Fact]
    public void A_command_handed_over_comes_back_with_the_arguments_after_it()
    {
        var cli = new ExecutableCommand("/usr/bin/dotnet", ["/app/disttrain.dll"]);
        string[] args = [.. cli.HandOver(), "startup", "--runs", "1"];
        var (command, rest) = ExecutableCommand.TakeHandedOver(args);
        Assert.Equal(cli.FileName, command!.FileName);
        Assert.Equal(cli.PrefixArguments, command.PrefixArguments);
        Assert.Equal(["startup", "--runs", "1"], rest);

        var (none, same) = ExecutableCommand.TakeHandedOver(["allreduce", "--json"]);
        Assert.Null(none);
        Assert.Equal(["allreduce", "--json"], same);
    }
}
