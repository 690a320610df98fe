using System.Security.Claims;
using System.Text.Encodings.Web;
using DistTrain.Api.Services;
using Grpc.Core;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace DistTrain.Api.Security;

/// <summary>
/// ASP.NET Core authentication for the job API: <c>authorization: Bearer TOKEN</c>, checked against
/// <see cref="ApiTokenSource"/> (which tokens are valid right now: rotation, grace, constant-time comparison). Endpoints
/// opt in through the <see cref="Policy"/> authorization policy; health checks, <c>/metrics</c> and the management routes
/// do not (probes carry no secrets). A refused call gets gRPC's own answer, UNAUTHENTICATED with the reason, not HTTP 401.
/// </summary>
public sealed class BearerTokenHandler(IOptionsMonitor<AuthenticationSchemeOptions> options, ILoggerFactory logger, UrlEncoder encoder,
    ApiTokenSource tokens) : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
{
    public const string SchemeName = "Bearer";
    /// <summary>The authorization policy of the job API's endpoints: an authenticated caller.</summary>
    public const string Policy = "job-api";
    public const string MissingToken = "missing bearer token (metadata authorization: Bearer TOKEN)";
    public const string InvalidToken = "invalid bearer token";

    protected override Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        if (!tokens.Required) return Task.FromResult(Success("anonymous"));   // local mode
        string? header = Request.Headers.Authorization;
        if (header is null) return Task.FromResult(AuthenticateResult.NoResult());
        const string prefix = SchemeName + " ";
        bool accepted = header.StartsWith(prefix, StringComparison.OrdinalIgnoreCase) && tokens.Accepts(header[prefix.Length..].Trim());
        return Task.FromResult(accepted ? Success("bearer") : AuthenticateResult.Fail(InvalidToken));
    }

    /// <summary>Refused: UNAUTHENTICATED, saying whether the token was missing or wrong (never which token was expected).</summary>
    protected override async Task HandleChallengeAsync(AuthenticationProperties properties)
    {
        var result = await HandleAuthenticateOnceSafeAsync();
        ErrorTrailers.WriteTrailersOnly(Response, StatusCode.Unauthenticated, result.Failure is null ? MissingToken : InvalidToken);
    }

    private AuthenticateResult Success(string kind) =>
        AuthenticateResult.Success(new AuthenticationTicket(new ClaimsPrincipal(new ClaimsIdentity([new Claim("caller", kind)], SchemeName)), SchemeName));
}
