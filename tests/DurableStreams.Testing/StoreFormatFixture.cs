using System.Text;
using DurableStreams.Core;
using DurableStreams.Protocol;
using DurableStreams.Core.Subscriptions;
using Microsoft.Extensions.Time.Testing;
using Xunit;

namespace DurableStreams.Testing;

/// <summary>
/// The data of the format fixtures (issue 24, "data written today opens tomorrow"): one fixed sequence of store calls
/// that a generator ran once against a durable store and saved (tests/DurableStreams.Durability.Tests/Fixtures/files-v1
/// for the file store, tests/DurableStreams.Postgres.Tests/Fixtures/postgres-v1.sql for PostgreSQL), and the checks a
/// later build runs on the saved data: every byte, offset, content type, closed flag, TTL and expiry, fork link,
/// soft delete, Stream-Seq and producer tuple. Change <see cref="WriteAsync"/> only together with new fixtures (a new
/// version directory); the saved ones must keep opening.
/// </summary>
public static class StoreFormatFixture
{
    private const string Text = "text/plain";
    private const string Json = "application/json";
    private const string Binary = "application/octet-stream";

    /// <summary>The fake clock's time when the generator started.</summary>
    public static readonly DateTimeOffset T0 = new(2026, 12, 6, 0, 0, 0, TimeSpan.Zero);

    /// <summary>The time a verifying store is opened at: after every write, before any TTL or expiry.</summary>
    public static readonly DateTimeOffset OpenAt = T0.AddHours(1);

    /// <summary>A stream as it must come back.</summary>
    public sealed record Expected(string Name, string ContentType, byte[] Bytes, bool Closed, DateTimeOffset CreatedAt, long? Ttl = null, DateTimeOffset? ExpiresAt = null);

    private static byte[] Utf8(string s) => Encoding.UTF8.GetBytes(s);

    /// <summary>Every live stream, with its bytes as a read returns them (JSON messages as sent, each followed by a comma).</summary>
    public static IReadOnlyList<Expected> Streams { get; } =
    [
        new("bytes", Binary, [.. Enumerable.Range(0, 256).Select(i => (byte)i)], false, T0.AddMinutes(1)),
        new("text", Text, Utf8("hello wörld ✓"), false, T0.AddMinutes(2)),
        new("json", Json, Utf8("{\"a\": 1},{\"b\": [1, 2]},\"three\","), false, T0.AddMinutes(3)),
        new("closed", Text, Utf8("done!"), true, T0.AddMinutes(4)),
        new("ttl", Text, Utf8("t"), false, T0.AddMinutes(5), Ttl: 86_400),
        new("expires", Text, Utf8("e"), false, T0.AddMinutes(6), ExpiresAt: T0.AddDays(30)),
        new("src", Text, Utf8("abcdef"), false, T0.AddMinutes(7)),
        new("fork", Text, Utf8("abcXYZ"), false, T0.AddMinutes(8)),
        new("fork2", Text, Utf8("abcXY!!"), false, T0.AddMinutes(9)),
        new("gone-fork", Text, Utf8("0123ab"), false, T0.AddMinutes(11)),
        new("producers", Text, Utf8("abcd"), false, T0.AddMinutes(12)),
        new("late", Text, Utf8("written after the last checkpoint"), false, T0.AddMinutes(20)),
    ];

    /// <summary>Streams soft-deleted while a fork still reads through them: 410, and 409 on re-create.</summary>
    public static IReadOnlyList<string> SoftDeleted { get; } = ["gone-src"];

    /// <summary>Streams deleted outright: they are simply absent.</summary>
    public static IReadOnlyList<string> Deleted { get; } = ["deleted"];

    /// <summary>Each producer's (stream, id, epoch, last seq, updated-at).</summary>
    public static IReadOnlyList<(string Stream, string Id, long Epoch, long Seq, DateTimeOffset At)> Producers { get; } =
    [
        ("producers", "p1", 0, 1, T0.AddMinutes(14)),
        ("producers", "p2", 3, 0, T0.AddMinutes(15)),
        ("producers", "prod-é✓", 1, 0, T0.AddMinutes(16)),
        ("late", "l1", 7, 0, T0.AddMinutes(20)),
    ];

    /// <summary>The last Stream-Seq of each stream that has one.</summary>
    public static IReadOnlyList<(string Stream, string Seq)> StreamSeqs { get; } = [("text", "0001")];

    /// <summary>
    /// Writes the fixture's streams. <paramref name="beforeLastCheckpoint"/> runs between the two phases: the file store
    /// generator suppresses checkpoints there, so the second phase stays in the commit log only.
    /// </summary>
    public static async Task WriteAsync(IStreamStore store, FakeTimeProvider time, Func<Task>? beforeLastCheckpoint, CancellationToken cancellationToken)
    {
        time.SetUtcNow(T0);
        async Task Create(string name, CreateStreamRequest request)
        {
            time.Advance(TimeSpan.FromMinutes(1));
            Assert.Equal(CreateStatus.Created, (await store.CreateAsync(name, request, cancellationToken)).Status);
        }
        async Task Append(string name, string contentType, byte[] body, string? seq = null, ProducerClaim? producer = null, bool close = false)
        {
            var request = new AppendRequest { ContentType = contentType, Body = body, StreamSeq = seq, Producer = producer, Close = close };
            Assert.Equal(AppendStatus.Appended, (await store.AppendAsync(name, request, cancellationToken)).Status);
        }
        ForkRequest Fork(string source, long offset) => new(source, new StreamOffset(offset), 0);

        await Create("bytes", new() { ContentType = Binary, Body = Enumerable.Range(0, 100).Select(i => (byte)i).ToArray() });
        await Append("bytes", Binary, [.. Enumerable.Range(100, 156).Select(i => (byte)i)]);
        await Create("text", new() { ContentType = Text, Body = Utf8("hello ") });
        await Append("text", Text, Utf8("wörld ✓"), seq: "0001");
        await Create("json", new() { ContentType = Json, Body = Utf8("[{\"a\": 1}, {\"b\": [1, 2]}]") });
        await Append("json", Json, Utf8("\"three\""));
        await Create("closed", new() { ContentType = Text, Body = Utf8("done") });
        await Append("closed", Text, Utf8("!"), close: true);
        await Create("ttl", new() { ContentType = Text, Body = Utf8("t"), TtlSeconds = 86_400 });
        await Create("expires", new() { ContentType = Text, Body = Utf8("e"), ExpiresAt = T0.AddDays(30) });
        await Create("src", new() { ContentType = Text, Body = Utf8("abcdef") });
        await Create("fork", new() { ContentType = Text, Fork = Fork("src", 3) });
        await Append("fork", Text, Utf8("XYZ"));
        await Create("fork2", new() { ContentType = Text, Fork = Fork("fork", 5) });
        await Append("fork2", Text, Utf8("!!"));
        await Create("gone-src", new() { ContentType = Text, Body = Utf8("0123456789") });
        await Create("gone-fork", new() { ContentType = Text, Fork = Fork("gone-src", 4), Body = Utf8("ab") });
        await Create("producers", new() { ContentType = Text });
        time.Advance(TimeSpan.FromMinutes(1));
        await Append("producers", Text, Utf8("a"), producer: new("p1", 0, 0));
        time.Advance(TimeSpan.FromMinutes(1));
        await Append("producers", Text, Utf8("b"), producer: new("p1", 0, 1));
        time.Advance(TimeSpan.FromMinutes(1));
        await Append("producers", Text, Utf8("c"), producer: new("p2", 3, 0));
        time.Advance(TimeSpan.FromMinutes(1));
        await Append("producers", Text, Utf8("d"), producer: new("prod-é✓", 1, 0));
        await Create("deleted", new() { ContentType = Text, Body = Utf8("x") });
        Assert.Equal(DeleteStatus.Deleted, (await store.DeleteAsync("deleted", cancellationToken)).Status);

        if (beforeLastCheckpoint is not null)
        {
            await beforeLastCheckpoint();
        }
        // Second phase (only in the file store's commit log): a delete that leaves a soft-deleted source behind, and a
        // stream created and appended to by a producer.
        Assert.Equal(DeleteStatus.Deleted, (await store.DeleteAsync("gone-src", cancellationToken)).Status);
        time.SetUtcNow(T0.AddMinutes(19));
        await Create("late", new() { ContentType = Text, Body = Utf8("written after ") });
        await Append("late", Text, Utf8("the last checkpoint"), producer: new("l1", 7, 0));
    }

    /// <summary>
    /// Checks a store opened over the saved data at <see cref="OpenAt"/> (the caller opens it on <paramref name="time"/>
    /// set to it). The checks write to the store (deletes, appends, time travel past TTLs): use a copy of the fixture.
    /// </summary>
    public static async Task VerifyAsync(IStreamStore store, FakeTimeProvider time, CancellationToken cancellationToken)
    {
        Assert.Equal(OpenAt, time.GetUtcNow());
        foreach (var expected in Streams)
        {
            var metadata = await store.GetMetadataAsync(expected.Name, cancellationToken);
            Assert.True(metadata.Status == ReadStatus.Ok, $"{expected.Name}: {metadata.Status}");
            var info = metadata.Info!;
            Assert.Equal(expected.Name, info.Name);
            Assert.Equal(expected.ContentType, info.ContentType);
            Assert.Equal(expected.Bytes.Length, info.Tail.Position);
            Assert.Equal(expected.Closed, info.Closed);
            Assert.Equal(expected.Ttl, info.TtlSeconds);
            Assert.Equal(expected.ExpiresAt, info.ExpiresAt);
            Assert.Equal(expected.CreatedAt, info.CreatedAt);

            await AssertReadAsync(store, expected, 0, cancellationToken);
            // A read from inside the stream: at a message boundary for JSON (the second message), else the middle.
            var middle = expected.ContentType == Json ? Encoding.UTF8.GetByteCount("{\"a\": 1},") : expected.Bytes.Length / 2;
            await AssertReadAsync(store, expected, middle, cancellationToken);
        }
        foreach (var name in SoftDeleted)
        {
            Assert.Equal(ReadStatus.Gone, (await store.GetMetadataAsync(name, cancellationToken)).Status);
            Assert.Equal(CreateStatus.SoftDeleted, (await store.CreateAsync(name, new CreateStreamRequest { ContentType = Text }, cancellationToken)).Status);
        }
        foreach (var name in Deleted)
        {
            Assert.Equal(ReadStatus.NotFound, (await store.GetMetadataAsync(name, cancellationToken)).Status);
        }

        // Producers: the last seq of the saved epoch is a duplicate, an older epoch is stale, the next seq is accepted.
        foreach (var (stream, id, epoch, seq, _) in Producers)
        {
            var duplicate = await store.AppendAsync(stream, new AppendRequest { ContentType = Text, Body = Utf8("?"), Producer = new(id, epoch, seq) }, cancellationToken);
            Assert.True(duplicate.Status == AppendStatus.Duplicate, $"{stream}/{id} ({epoch}, {seq}): {duplicate.Status}");
            if (epoch > 0)
            {
                var stale = await store.AppendAsync(stream, new AppendRequest { ContentType = Text, Body = Utf8("?"), Producer = new(id, epoch - 1, 0) }, cancellationToken);
                Assert.True(stale.Status == AppendStatus.StaleEpoch, $"{stream}/{id} epoch {epoch - 1}: {stale.Status}");
            }
        }
        foreach (var (stream, seq) in StreamSeqs)
        {
            var again = await store.AppendAsync(stream, new AppendRequest { ContentType = Text, Body = Utf8("?"), StreamSeq = seq }, cancellationToken);
            Assert.Equal(AppendStatus.StreamSeqConflict, again.Status);
        }
        var closed = await store.AppendAsync("closed", new AppendRequest { ContentType = Text, Body = Utf8("?") }, cancellationToken);
        Assert.Equal(AppendStatus.StreamClosed, closed.Status);
        var next = await store.AppendAsync("producers", new AppendRequest { ContentType = Text, Body = Utf8("e"), Producer = new("p1", 0, 2) }, cancellationToken);
        Assert.Equal(AppendStatus.Appended, next.Status);
        Assert.Equal(5, next.NextOffset.Position);

        // Fork links: a source with a live fork is only soft-deleted (its name stays taken), and the forks keep reading
        // through it, down a fork of a fork; a stream without forks is deleted outright.
        Assert.Equal(DeleteStatus.Deleted, (await store.DeleteAsync("src", cancellationToken)).Status);
        Assert.Equal(CreateStatus.SoftDeleted, (await store.CreateAsync("src", new CreateStreamRequest { ContentType = Text }, cancellationToken)).Status);
        Assert.Equal(DeleteStatus.Deleted, (await store.DeleteAsync("fork", cancellationToken)).Status);
        Assert.Equal(ReadStatus.Gone, (await store.GetMetadataAsync("fork", cancellationToken)).Status);
        await AssertReadAsync(store, Streams.Single(s => s.Name == "fork2"), 0, cancellationToken);
        Assert.Equal(DeleteStatus.Deleted, (await store.DeleteAsync("bytes", cancellationToken)).Status);
        Assert.Equal(CreateStatus.Created, (await store.CreateAsync("bytes", new CreateStreamRequest { ContentType = Binary }, cancellationToken)).Status);

        // TTL and expiry were saved: the sliding TTL (refreshed by the reads above) ends a day after them, Expires-At
        // at its instant.
        time.SetUtcNow(OpenAt.AddDays(2));
        Assert.Equal(ReadStatus.NotFound, (await store.GetMetadataAsync("ttl", cancellationToken)).Status);
        Assert.Equal(ReadStatus.Ok, (await store.GetMetadataAsync("expires", cancellationToken)).Status);
        time.SetUtcNow(T0.AddDays(30).AddSeconds(1));
        Assert.Equal(ReadStatus.NotFound, (await store.GetMetadataAsync("expires", cancellationToken)).Status);
    }

    private static async Task AssertReadAsync(IStreamStore store, Expected expected, int position, CancellationToken cancellationToken)
    {
        using var read = await store.ReadAsync(expected.Name, new ReadRequest(OffsetQuery.At(new StreamOffset(position)), 1 << 20), cancellationToken);
        Assert.True(read.Status == ReadStatus.Ok, $"{expected.Name} at {position}: {read.Status}");
        Assert.Equal(position, read.Start.Position);
        Assert.Equal(expected.Bytes.Length, read.Next.Position);
        Assert.True(read.UpToDate, $"{expected.Name} at {position} is not up to date");
        Assert.Equal(expected.Closed, read.Closed);
        Assert.Equal(expected.Bytes[position..], read.Chunks.SelectMany(c => c.ToArray()).ToArray());
    }

    /// <summary>The subscription state the generators save (a webhook and a pull-wake subscription, and signing keys).</summary>
    public static IReadOnlyList<SubscriptionState> Subscriptions() =>
    [
        new()
        {
            Id = "sub-webhook",
            Type = SubscriptionType.Webhook,
            Pattern = "orders/*",
            Streams = ["text"],
            WebhookUrl = "https://hooks.example.com/ds",
            LeaseTtlMs = 30_000,
            Description = "fixture webhook",
            ConfigHash = "fixture-hash-webhook",
            CreatedAt = T0.AddMinutes(30),
            BaseUrl = "http://127.0.0.1:4437/v1/stream/",
            Links = new(StringComparer.Ordinal)
            {
                ["text"] = new() { Explicit = true, AckedOffset = "0000000000000000_0000000000000006" },
                ["orders/1"] = new() { Glob = true, AckedOffset = "-1" },
            },
            Generation = 3,
            WakeId = "wake-3",
            WakeSnapshot = new(StringComparer.Ordinal) { ["text"] = "0000000000000000_0000000000000010" },
            RetryCount = 2,
            NextAttemptAt = T0.AddMinutes(31),
        },
        new()
        {
            Id = "sub-pull",
            Type = SubscriptionType.PullWake,
            Streams = ["json", "bytes"],
            WakeStream = "wakes",
            LeaseTtlMs = 60_000,
            ConfigHash = "fixture-hash-pull",
            CreatedAt = T0.AddMinutes(32),
            Links = new(StringComparer.Ordinal)
            {
                ["json"] = new() { Explicit = true, AckedOffset = "0000000000000000_0000000000000008" },
            },
            Generation = 1,
            LeaseHolder = "worker-1",
            LeaseExpiresAt = T0.AddMinutes(33),
        },
    ];

    /// <summary>A subscription the generators save and then delete: it must not come back.</summary>
    public static SubscriptionState DeletedSubscription() => new()
    {
        Id = "sub-deleted",
        Type = SubscriptionType.Webhook,
        Streams = ["text"],
        WebhookUrl = "https://hooks.example.com/gone",
        ConfigHash = "fixture-hash-deleted",
        CreatedAt = T0.AddMinutes(34),
    };

    /// <summary>The signing keys the generators save (not real keys: fixed base64url strings).</summary>
    public static IReadOnlyList<SigningKeyState> SigningKeys() =>
    [
        new() { Kid = "k1", PrivateKey = "cHJpdmF0ZS1rZXktb25lLWZvci10aGUtZml4dHVyZQ", PublicKey = "cHVibGljLWtleS1vbmUtZm9yLXRoZS1maXh0dXJl", CreatedAt = T0.AddMinutes(35), RetireAfter = T0.AddDays(7) },
        new() { Kid = "k2", PrivateKey = "cHJpdmF0ZS1rZXktdHdvLWZvci10aGUtZml4dHVyZQ", PublicKey = "cHVibGljLWtleS10d28tZm9yLXRoZS1maXh0dXJl", CreatedAt = T0.AddMinutes(36) },
    ];

    /// <summary>Asserts the loaded subscriptions and keys equal the saved ones, field by field (compared as their JSON).</summary>
    public static void AssertSubscriptions(IEnumerable<SubscriptionState> actual, IEnumerable<SigningKeyState> keys)
    {
        static string Json(SubscriptionState s) => Encoding.UTF8.GetString(SubscriptionStateJson.Serialize(s));
        Assert.Equal(
            Subscriptions().OrderBy(s => s.Id, StringComparer.Ordinal).Select(Json),
            actual.OrderBy(s => s.Id, StringComparer.Ordinal).Select(Json));
        Assert.Equal(
            Encoding.UTF8.GetString(SubscriptionStateJson.SerializeKeys(SigningKeys())),
            Encoding.UTF8.GetString(SubscriptionStateJson.SerializeKeys([.. keys])));
    }
}
