using System.Runtime.InteropServices;
using Prometheus;

namespace DistTrain.Cluster.Observability;

/// <summary>
/// Memory of the node's process, and of its GPUs where CUDA is present. prometheus-net's standard process collectors
/// give <c>process_working_set_bytes</c>, <c>process_private_memory_bytes</c>, <c>dotnet_total_memory_bytes</c> and CPU
/// time; GPU memory is read from NVML (the library the NVIDIA driver installs) just before each scrape.
/// </summary>
public sealed class ProcessMetrics
{
    private readonly Gauge _gpuUsed;
    private readonly Gauge _gpuTotal;
    private readonly Nvml? _nvml;

    public ProcessMetrics(MetricFactory f, CollectorRegistry registry)
    {
        DotNetStats.Register(registry);
        _gpuUsed = f.CreateGauge("disttrain_gpu_memory_used_bytes", "GPU memory in use on the device (all processes), from NVML.", "device");
        _gpuTotal = f.CreateGauge("disttrain_gpu_memory_total_bytes", "GPU memory of the device, from NVML.", "device");
        _nvml = Nvml.TryOpen();
        if (_nvml is not null) registry.AddBeforeCollectCallback(ReadGpus);
    }

    /// <summary>Whether NVML was found (a host with an NVIDIA driver); without it no GPU series are exported.</summary>
    public bool GpuMemoryAvailable => _nvml is not null;

    private void ReadGpus()
    {
        for (int i = 0; i < _nvml!.DeviceCount; i++)
        {
            if (_nvml.Memory(i) is not var (used, total)) continue;
            _gpuUsed.WithLabels($"cuda:{i}").Set(used);
            _gpuTotal.WithLabels($"cuda:{i}").Set(total);
        }
    }

    /// <summary>The few NVML calls needed for device memory; absent (null) where the driver library is not installed.</summary>
    private sealed class Nvml
    {
        private const string Library = "libnvidia-ml.so.1";

        [StructLayout(LayoutKind.Sequential)]
        private struct MemoryInfo { public ulong Total, Free, Used; }

        [UnmanagedFunctionPointer(CallingConvention.Cdecl)] private delegate int InitFn();
        [UnmanagedFunctionPointer(CallingConvention.Cdecl)] private delegate int CountFn(out uint count);
        [UnmanagedFunctionPointer(CallingConvention.Cdecl)] private delegate int HandleFn(uint index, out IntPtr device);
        [UnmanagedFunctionPointer(CallingConvention.Cdecl)] private delegate int MemoryFn(IntPtr device, out MemoryInfo memory);

        private readonly HandleFn _handle;
        private readonly MemoryFn _memory;

        private Nvml(IntPtr lib, uint count)
        {
            _handle = Marshal.GetDelegateForFunctionPointer<HandleFn>(NativeLibrary.GetExport(lib, "nvmlDeviceGetHandleByIndex_v2"));
            _memory = Marshal.GetDelegateForFunctionPointer<MemoryFn>(NativeLibrary.GetExport(lib, "nvmlDeviceGetMemoryInfo"));
            DeviceCount = (int)count;
        }

        public int DeviceCount { get; }

        public static Nvml? TryOpen()
        {
            if (!NativeLibrary.TryLoad(Library, out var lib)) return null;
            try
            {
                var init = Marshal.GetDelegateForFunctionPointer<InitFn>(NativeLibrary.GetExport(lib, "nvmlInit_v2"));
                var count = Marshal.GetDelegateForFunctionPointer<CountFn>(NativeLibrary.GetExport(lib, "nvmlDeviceGetCount_v2"));
                return init() == 0 && count(out uint n) == 0 ? new Nvml(lib, n) : null;   // 0 is NVML_SUCCESS
            }
            catch (EntryPointNotFoundException) { return null; }
        }

        public (double Used, double Total)? Memory(int index) =>
            _handle((uint)index, out var device) == 0 && _memory(device, out var m) == 0 ? (m.Used, m.Total) : null;
    }
}
