using BenchmarkDotNet.Running;
using DurableStreams.MicroBench;

// dotnet run -c Release --project scripts/microbench -- --filter '*'   (BenchmarkDotNet's own options apply)
// dotnet run -c Release --project scripts/microbench -- --retained     (the memory store's retained bytes per message)
if (args is ["--retained"])
{
    await RetainedMemory.RunAsync();
    return;
}

BenchmarkSwitcher.FromAssembly(typeof(OffsetBenchmarks).Assembly).Run(args);
