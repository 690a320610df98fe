using DistTrain.Cluster.Jobs;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace DistTrain.Api.Services;

/// <summary>
/// Healthy when the job service answers, which needs the coordinator singleton (through its proxy): the gRPC
/// health service reports SERVING for <c>disttrain.v1.Jobs</c> then, NOT_SERVING otherwise.
/// </summary>
public sealed class CoordinatorHealthCheck(IJobService jobs) : IHealthCheck
{
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(3);

    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken ct = default)
    {
        using var bounded = CancellationTokenSource.CreateLinkedTokenSource(ct);
        bounded.CancelAfter(Timeout);
        try
        {
            var workers = await jobs.WorkersAsync(bounded.Token).WaitAsync(Timeout, ct);
            return HealthCheckResult.Healthy($"coordinator answers; {workers.Count} worker(s)");
        }
        catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
        {
            return HealthCheckResult.Unhealthy($"coordinator does not answer: {e.Message}");
        }
    }
}
