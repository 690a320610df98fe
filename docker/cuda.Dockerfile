# syntax=docker/dockerfile:1
# The DistTrain CUDA image: `disttrain node` with TorchSharp-cuda-linux (libtorch for CUDA 12.8) on an NVIDIA CUDA
# runtime base, as a non-root user (uid 10001). Build from the repository root (docs/deploy.md):
#   docker build -f docker/cuda.Dockerfile -t disttrain:cuda .
# k8s/overlays/gpu runs it with one nvidia.com/gpu per worker pod (DISTTRAIN_DEVICES=cuda:0).

# Build stage: the .NET 10 SDK (Ubuntu 24.04) publishes the CLI and disttrain-bench with the CUDA torch backend for linux-x64.
# TorchSharp-cuda-linux comes from nuget.org (several GB: libtorch with its CUDA and cuDNN libraries).
FROM mcr.microsoft.com/dotnet/sdk:10.0-noble AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/root/.nuget/packages \
    dotnet publish src/DistTrain.Cli -c Release -r linux-x64 --self-contained false -p:TorchBackend=cuda -o /out \
    && dotnet publish bench/DistTrain.Bench -c Release -r linux-x64 --self-contained false -p:TorchBackend=cuda -o /out

# The ASP.NET Core runtime to copy into the CUDA image (same Ubuntu 24.04 as the CUDA base below).
FROM mcr.microsoft.com/dotnet/aspnet:10.0-noble AS dotnet

# Runtime stage: NVIDIA's CUDA 12.8 runtime on Ubuntu 24.04 (its libstdc++ has GLIBCXX_3.4.32, so the TorchSharp shim
# loads unpatched) plus the .NET runtime and what it needs (ICU, CA certificates, time zones).
FROM nvidia/cuda:12.8.1-runtime-ubuntu24.04 AS runtime
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates libicu74 tzdata \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid 10001 disttrain \
    && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin disttrain
COPY --from=dotnet /usr/share/dotnet /usr/share/dotnet
RUN ln -s /usr/share/dotnet/dotnet /usr/bin/dotnet
WORKDIR /app
COPY --from=build /out /app
ENV DOTNET_ROOT=/usr/share/dotnet \
    DOTNET_CLI_TELEMETRY_OPTOUT=1 \
    DISTTRAIN_HOST=0.0.0.0 \
    MALLOC_MMAP_THRESHOLD_=1073741824 \
    MALLOC_TRIM_THRESHOLD_=1073741824 \
    MALLOC_ARENA_MAX=1
# (glibc keeps the step's 32 MiB+ buffers on the heap, in one arena, instead of mapping them anew each step: docs/benchmarks.md)
# remoting, Akka.Management (/ready, /alive), Prometheus /metrics, gRPC job API
EXPOSE 4053 8558 9464 50051
USER 10001:10001
ENTRYPOINT ["/app/disttrain", "node"]
