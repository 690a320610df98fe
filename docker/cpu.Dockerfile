# syntax=docker/dockerfile:1
# The DistTrain CPU image: `disttrain node` with TorchSharp-cpu, as a non-root user (uid 10001).
# Build from the repository root (docs/deploy.md):
#   docker build -f docker/cpu.Dockerfile -t disttrain:cpu .
# The node reads its configuration from DISTTRAIN_* variables (docs/configuration.md); k8s/overlays/cpu runs it.

# Build stage: the .NET 10 SDK (Ubuntu 24.04) publishes the CLI and disttrain-bench (which `disttrain bench` starts
# from beside itself) for linux-x64, so only Linux natives are copied.
# Ubuntu 24.04's libstdc++ already has GLIBCXX_3.4.32, so build/TorchSharpNative.targets leaves the shim as it is.
FROM mcr.microsoft.com/dotnet/sdk:10.0-noble AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/root/.nuget/packages \
    dotnet publish src/DistTrain.Cli -c Release -r linux-x64 --self-contained false -p:TorchBackend=cpu -o /out \
    && dotnet publish bench/DistTrain.Bench -c Release -r linux-x64 --self-contained false -p:TorchBackend=cpu -o /out

# Runtime stage: the ASP.NET Core runtime (Kestrel serves the management, metrics and gRPC ports).
FROM mcr.microsoft.com/dotnet/aspnet:10.0-noble AS runtime
RUN groupadd --gid 10001 disttrain \
    && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin disttrain
WORKDIR /app
# Owned by root and read-only to the node: it writes only to DISTTRAIN_RUN_ROOT and /tmp.
COPY --from=build /out /app
ENV DOTNET_CLI_TELEMETRY_OPTOUT=1 \
    DISTTRAIN_HOST=0.0.0.0 \
    MALLOC_MMAP_THRESHOLD_=1073741824 \
    MALLOC_TRIM_THRESHOLD_=1073741824 \
    MALLOC_ARENA_MAX=1
# (glibc keeps the step's 32 MiB+ buffers on the heap, in one arena, instead of mapping them anew each step: docs/benchmarks.md)
# remoting, Akka.Management (/ready, /alive), Prometheus /metrics, gRPC job API
EXPOSE 4053 8558 9464 50051
USER 10001:10001
ENTRYPOINT ["/app/disttrain", "node"]
