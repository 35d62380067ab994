using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace DurableStreams.Storage.Files;

/// <summary>
/// The file store's instruments, on one process-wide meter <see cref="MeterName"/>: group commits (fsync batches), how
/// many appends each carried, and how long writing and syncing the commit record took. With no listener each recording
/// is a flag check; nothing allocates.
/// </summary>
public static class FileStoreMetrics
{
    /// <summary>The meter's name.</summary>
    public const string MeterName = "DurableStreams.Storage.File"; // the published meter name; kept when the assembly was renamed

    private static readonly Meter s_meter = new(MeterName);

    private static readonly Counter<long> s_batches = s_meter.CreateCounter<long>(
        "durable_streams.file.commit_batches", "{batch}", "Group commits written to the commit log (synced with durability 'always').");

    private static readonly Histogram<long> s_batchSize = s_meter.CreateHistogram<long>(
        "durable_streams.file.commit_batch_size", "{operation}", "Operations (appends, creates, deletes) carried by one group commit.",
        advice: new InstrumentAdvice<long> { HistogramBucketBoundaries = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096, 8192] });

    private static readonly Histogram<double> s_duration = s_meter.CreateHistogram<double>(
        "durable_streams.file.commit_duration", "s", "Time to write (and, with durability 'always', fsync) one group commit.",
        advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1] });

    /// <summary>Whether anyone listens; callers skip taking timestamps otherwise.</summary>
    internal static bool Enabled => s_duration.Enabled || s_batchSize.Enabled || s_batches.Enabled;

    internal static void Committed(int operations, long startTimestamp)
    {
        s_batches.Add(1);
        s_batchSize.Record(operations);
        if (startTimestamp != 0)
        {
            s_duration.Record(Stopwatch.GetElapsedTime(startTimestamp).TotalSeconds);
        }
    }
}
