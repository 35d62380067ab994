using BenchmarkDotNet.Running;

// dotnet run -c Release --project scripts/microbench -- --filter '*'   (BenchmarkDotNet's own options apply)
BenchmarkSwitcher.FromAssembly(typeof(DurableStreams.MicroBench.OffsetBenchmarks).Assembly).Run(args);
