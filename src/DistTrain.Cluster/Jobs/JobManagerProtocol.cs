using DistTrain.Contracts.Specs;

namespace DistTrain.Cluster.Jobs;

/// <summary>Requests to the job manager singleton; each is answered with the reply named on it.</summary>
public interface IJobCommand;

/// <summary>Answered with <see cref="SubmitOutcome"/>.</summary>
public sealed record SubmitJob(string SpecYaml, bool Quick) : IJobCommand;

/// <summary>Answered with <see cref="JobLookup"/>.</summary>
public sealed record GetJob(string JobId) : IJobCommand;
public sealed record JobLookup(JobView? Job);

/// <summary>Answered with <see cref="JobList"/>.</summary>
public sealed record ListJobs(JobState? State, string? Name, int Limit) : IJobCommand;
public sealed record JobList(IReadOnlyList<JobView> Jobs);

/// <summary>Answered with <see cref="CancelReply"/>.</summary>
public sealed record CancelJob(string JobId) : IJobCommand;
public sealed record CancelReply(CancelOutcome Outcome, JobView? Job);
