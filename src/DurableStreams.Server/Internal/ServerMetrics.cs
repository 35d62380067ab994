using System.Diagnostics.Metrics;
using DurableStreams.Core;
using DurableStreams.Storage.Files;
using DurableStreams.Core.Memory;

namespace DurableStreams.Server.Internal;

/// <summary>Why a request was turned away; the <c>reason</c> tag of <c>durable_streams.rejected_requests</c>.</summary>
internal static class RejectionReasons
{
    public const string TooLarge = "too_large";
    public const string BadName = "bad_name";
    public const string RateLimited = "rate_limited";
    public const string LiveReadersFull = "live_readers_full";
    public const string BodyBudgetFull = "body_budget_full";
    public const string Unauthorized = "unauthorized";
    public const string Forbidden = "forbidden";
}

/// <summary>
/// The server's instruments on the meter <see cref="DurableStreamsServiceCollectionExtensions.MeterName"/>. Without a
/// meter factory (metrics not registered) every method is a null check; with one but no listener, instruments return
/// at once. No recording allocates.
/// </summary>
internal sealed class ServerMetrics
{
    private readonly Counter<long>? _appends;
    private readonly Counter<long>? _received;
    private readonly Counter<long>? _sent;
    private readonly Counter<long>? _created;
    private readonly Counter<long>? _deleted;
    private readonly Counter<long>? _rejected;

    public ServerMetrics(IMeterFactory? meterFactory, LiveReaderGate liveReaders, IStreamStore store)
    {
        LiveReaders = liveReaders;
        if (meterFactory is null)
        {
            return;
        }
        var meter = meterFactory.Create(DurableStreamsServiceCollectionExtensions.MeterName);
        _appends = meter.CreateCounter<long>("durable_streams.appends", "{append}", "Appends accepted (each request that added data counts once).");
        _received = meter.CreateCounter<long>("durable_streams.received", "By", "Body bytes of accepted appends.");
        _sent = meter.CreateCounter<long>("durable_streams.sent", "By", "Stream data bytes written to readers (catch-up and long-poll bodies, SSE payloads before framing).");
        _created = meter.CreateCounter<long>("durable_streams.streams.created", "{stream}", "Streams created.");
        _deleted = meter.CreateCounter<long>("durable_streams.streams.deleted", "{stream}", "Streams deleted.");
        _rejected = meter.CreateCounter<long>("durable_streams.rejected_requests", "{request}", "Requests turned away by a limit or by authentication, by reason.");
        meter.CreateObservableUpDownCounter(
            "durable_streams.live_readers",
            () => new[]
            {
                new Measurement<int>(liveReaders.LongPoll, new KeyValuePair<string, object?>("mode", "long-poll")),
                new Measurement<int>(liveReaders.Sse, new KeyValuePair<string, object?>("mode", "sse")),
            },
            "{reader}",
            "Long-poll and SSE requests in progress.");
        Func<int>? count = store switch
        {
            FileStreamStore file => () => file.Count,
            MemoryStreamStore memory => () => memory.Count,
            _ => null,
        };
        if (count is not null)
        {
            meter.CreateObservableUpDownCounter("durable_streams.streams", count, "{stream}", "Streams in the store (not deleted).");
        }
    }

    /// <summary>The live-reader counts the <c>durable_streams.live_readers</c> instrument reports.</summary>
    public LiveReaderGate LiveReaders { get; }

    public void Appended(long bytes)
    {
        if (_appends is null)
        {
            return;
        }
        _appends.Add(1);
        _received!.Add(bytes);
    }

    public void Sent(long bytes) => _sent?.Add(bytes);

    public void Created() => _created?.Add(1);

    public void Deleted() => _deleted?.Add(1);

    public void Rejected(string reason) => _rejected?.Add(1, new KeyValuePair<string, object?>("reason", reason));
}
