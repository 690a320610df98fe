using DistTrain.Cluster.Jobs;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace DistTrain.Api.Services;

/// <summary>
/// Healthy when both singletons behind the job service answer through their proxies within a few seconds: the
/// coordinator (the worker registry) and the job manager (a one-job listing). The gRPC health service reports
/// SERVING for <c>disttrain.v1.Jobs</c> then, NOT_SERVING otherwise.
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
            var workers = jobs.WorkersAsync(bounded.Token);
            var listing = jobs.ListAsync(null, null, 1, bounded.Token);
            await Task.WhenAll(workers, listing).WaitAsync(Timeout, ct);
            return HealthCheckResult.Healthy($"coordinator and job manager answer; {workers.Result.Count} worker(s)");
        }
        catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
        {
            return HealthCheckResult.Unhealthy($"coordinator or job manager does not answer: {e.Message}");
        }
    }
}
