using System.Text;
using DurableStreams.Core;
using DurableStreams.Core.Memory;
using DurableStreams.Storage.Postgres;
using Microsoft.Extensions.Time.Testing;
using Npgsql;
using Xunit;

namespace DurableStreams.Postgres.Tests;

/// <summary>
/// Parity of the one-round-trip append (<c>ds_append</c> plus the shared rules on the state it returns) with the rules
/// themselves: each case builds the same stream in the PostgreSQL store and in the memory store (which only runs
/// <see cref="AppendRules"/>), sends the same request through the one-round-trip path alone, and expects the memory
/// store's answer and stored bytes. Cases the function leaves to the locking transaction are named, and answered the
/// same way by the full store.
/// </summary>
public sealed class PostgresAppendFunctionTests(PostgresServer server) : IAsyncLifetime
{
    private const string Octets = "application/octet-stream";
    private static readonly TimeSpan ProducerRetention = TimeSpan.FromHours(1);

    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));
    private readonly string _schema = server.NewSchema("append");
    private PostgresStreamStore? _postgres;
    private MemoryStreamStore? _memory;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public async ValueTask InitializeAsync()
    {
        server.SkipIfUnavailable();
        _postgres = await PostgresStreamStore.OpenAsync(new PostgresStreamStoreOptions
        {
            ConnectionString = server.ConnectionString,
            Schema = _schema,
            TimeProvider = _time,
            ProducerRetention = ProducerRetention,
            // No sweeper while a case advances the clock: an expired stream is the append's to find.
            SweepInterval = TimeSpan.FromDays(1),
        }, Ct);
        _memory = new MemoryStreamStore(new MemoryStreamStoreOptions { TimeProvider = _time, ProducerRetention = ProducerRetention, SweepInterval = TimeSpan.FromDays(1) });
    }

    public async ValueTask DisposeAsync()
    {
        if (_postgres is not null)
        {
            await _postgres.DisposeAsync();
        }
        if (_memory is not null)
        {
            await _memory.DisposeAsync();
        }
    }

    /// <summary>How the one-round-trip path answers: it writes, it answers a rejection, or it leaves the append.</summary>
    public enum Path
    {
        Written,
        Answered,
        Locking,
    }

    public static TheoryData<string, Path> Cases() => new()
    {
        { "plain", Path.Written },
        { "close with data", Path.Written },
        { "close only", Path.Written },
        { "json", Path.Written },
        { "new producer at 0", Path.Written },
        { "new producer at 1: gap", Path.Answered },
        { "next seq", Path.Written },
        { "duplicate", Path.Answered },
        { "gap", Path.Answered },
        { "stale epoch", Path.Answered },
        { "epoch bump at 0", Path.Written },
        { "epoch bump at 1", Path.Answered },
        { "expired producer at 0", Path.Written },
        { "expired producer at 5: gap", Path.Answered },
        { "closed: data", Path.Answered },
        { "closed: close only", Path.Answered },
        { "closed: retry of the closing producer", Path.Answered },
        { "closed: other producer seq", Path.Answered },
        { "content type mismatch", Path.Answered },
        { "stream seq conflict", Path.Answered },
        { "stream seq above", Path.Written },
        { "not found", Path.Answered },
        { "content type spelled otherwise", Path.Locking },
        { "invalid json", Path.Locking },
        { "empty body", Path.Locking },
        { "non-ascii stream seq", Path.Locking },
        { "expired stream", Path.Locking },
        { "max seq then next", Path.Answered },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task The_one_round_trip_append_answers_as_the_rules_do(string name, Path expected)
    {
        var (stream, request) = await ArrangeAsync(name);

        var oneTrip = await _postgres!.AppendInOneRoundTripAsync(stream, request, Ct);
        var rules = await _memory!.AppendAsync(stream, request, Ct);

        var path = oneTrip is null ? Path.Locking : oneTrip.Value.Status == AppendStatus.Appended ? Path.Written : Path.Answered;
        Assert.Equal(expected, path);
        var answer = oneTrip ?? await _postgres.AppendAsync(stream, request, Ct);
        Assert.Equal(rules, answer);
        Assert.Equal(await ReadAllAsync(_memory, stream), await ReadAllAsync(_postgres, stream));
    }

    [Fact]
    public async Task The_one_round_trip_answers_carry_the_streams_offset_generation()
    {
        await CreateAsync("s");
        await using (var connection = new NpgsqlConnection(server.ConnectionString))
        {
            await connection.OpenAsync(Ct);
            await using var command = new NpgsqlCommand($"UPDATE \"{_schema}\".ds_streams SET offset_generation = 3 WHERE name = 's'", connection);
            Assert.Equal(1, await command.ExecuteNonQueryAsync(Ct));
        }

        var appended = await _postgres!.AppendInOneRoundTripAsync("s", Data("a", producer: new("p", 0, 0)), Ct);
        var duplicate = await _postgres.AppendInOneRoundTripAsync("s", Data("a", producer: new("p", 0, 0)), Ct);

        Assert.Equal((AppendStatus.Appended, 1L, 3L), (appended!.Value.Status, appended.Value.NextOffset.Position, appended.Value.NextOffset.Generation));
        Assert.Equal((AppendStatus.Duplicate, 1L, 3L), (duplicate!.Value.Status, duplicate.Value.NextOffset.Position, duplicate.Value.NextOffset.Generation));
    }

    /// <summary>Builds the case's stream in both stores and returns the request under test.</summary>
    private async Task<(string Stream, AppendRequest Request)> ArrangeAsync(string name)
    {
        const string s = "s";
        switch (name)
        {
            case "plain":
                await CreateAsync(s);
                await AppendAsync(s, Data("a"));
                return (s, Data("b"));
            case "close with data":
                await CreateAsync(s);
                return (s, Data("a", close: true));
            case "close only":
                await CreateAsync(s);
                await AppendAsync(s, Data("a"));
                return (s, new AppendRequest { Close = true });
            case "json":
                await CreateAsync(s, "application/json");
                await AppendAsync(s, Json("[1]"));
                return (s, Json("""[{"a":1}, "x", [2]]"""));
            case "new producer at 0":
                await CreateAsync(s);
                return (s, Data("a", producer: new("p", 0, 0)));
            case "new producer at 1: gap":
                await CreateAsync(s);
                return (s, Data("a", producer: new("p", 0, 1)));
            case "next seq":
                await ProducerAtAsync(s, epoch: 1, seq: 2);
                return (s, Data("x", producer: new("p", 1, 3)));
            case "duplicate":
                await ProducerAtAsync(s, epoch: 1, seq: 2);
                return (s, Data("x", producer: new("p", 1, 1)));
            case "gap":
                await ProducerAtAsync(s, epoch: 1, seq: 2);
                return (s, Data("x", producer: new("p", 1, 4)));
            case "stale epoch":
                await ProducerAtAsync(s, epoch: 1, seq: 2);
                return (s, Data("x", producer: new("p", 0, 3)));
            case "epoch bump at 0":
                await ProducerAtAsync(s, epoch: 1, seq: 2);
                return (s, Data("x", producer: new("p", 2, 0)));
            case "epoch bump at 1":
                await ProducerAtAsync(s, epoch: 1, seq: 2);
                return (s, Data("x", producer: new("p", 2, 1)));
            case "expired producer at 0":
                await ProducerAtAsync(s, epoch: 3, seq: 2);
                _time.Advance(ProducerRetention);
                return (s, Data("x", producer: new("p", 1, 0)));
            case "expired producer at 5: gap":
                await ProducerAtAsync(s, epoch: 1, seq: 4);
                _time.Advance(ProducerRetention);
                return (s, Data("x", producer: new("p", 1, 5)));
            case "closed: data":
                await CreateAsync(s);
                await AppendAsync(s, Data("a", close: true));
                return (s, Data("b"));
            case "closed: close only":
                await CreateAsync(s);
                await AppendAsync(s, Data("a", close: true));
                return (s, new AppendRequest { Close = true });
            case "closed: retry of the closing producer":
                await CreateAsync(s);
                await AppendAsync(s, Data("a", producer: new("p", 0, 0), close: true));
                return (s, Data("a", producer: new("p", 0, 0), close: true));
            case "closed: other producer seq":
                await CreateAsync(s);
                await AppendAsync(s, Data("a", producer: new("p", 0, 0)));
                await AppendAsync(s, Data("b", producer: new("p", 0, 1), close: true));
                return (s, Data("a", producer: new("p", 0, 0)));
            case "content type mismatch":
                await CreateAsync(s);
                return (s, new AppendRequest { ContentType = "text/plain", Body = "a"u8.ToArray() });
            case "stream seq conflict":
                await CreateAsync(s);
                await AppendAsync(s, Data("a", streamSeq: "b"));
                return (s, Data("b", streamSeq: "a"));
            case "stream seq above":
                await CreateAsync(s);
                await AppendAsync(s, Data("a", streamSeq: "0009"));
                return (s, Data("b", streamSeq: "0010"));
            case "not found":
                return ("missing", Data("a"));
            case "content type spelled otherwise":
                await CreateAsync(s);
                return (s, new AppendRequest { ContentType = "Application/Octet-Stream; x=1", Body = "a"u8.ToArray() });
            case "invalid json":
                await CreateAsync(s, "application/json");
                return (s, Json("[1,"));
            case "empty body":
                await CreateAsync(s);
                return (s, new AppendRequest { ContentType = Octets });
            case "non-ascii stream seq":
                await CreateAsync(s);
                await AppendAsync(s, Data("a", streamSeq: "\uE000"));
                return (s, Data("b", streamSeq: "\U0001F600"));
            case "expired stream":
                await CreateAsync(s, ttlSeconds: 10);
                _time.Advance(TimeSpan.FromSeconds(10));
                return (s, Data("a"));
            case "max seq then next":
                await CreateAsync(s);
                await AppendAsync(s, Data("a", producer: new("p", 0, 0)));
                await AppendAsync(s, Data("b", producer: new("p", 1, 0)));
                return (s, Data("c", producer: new("p", 1, long.MaxValue)));
            default:
                throw new ArgumentOutOfRangeException(nameof(name), name, null);
        }
    }

    /// <summary>A stream whose producer "p" last wrote (epoch, seq), through the stores' full append.</summary>
    private async Task ProducerAtAsync(string s, long epoch, long seq)
    {
        await CreateAsync(s);
        for (var i = 0L; i <= seq; i++)
        {
            await AppendAsync(s, Data("d" + i, producer: new("p", epoch, i)));
        }
    }

    private async Task CreateAsync(string s, string contentType = Octets, long? ttlSeconds = null)
    {
        var request = new CreateStreamRequest { ContentType = contentType, TtlSeconds = ttlSeconds };
        Assert.Equal(CreateStatus.Created, (await _postgres!.CreateAsync(s, request, Ct)).Status);
        Assert.Equal(CreateStatus.Created, (await _memory!.CreateAsync(s, request, Ct)).Status);
    }

    private async Task AppendAsync(string s, AppendRequest request)
    {
        var expected = await _memory!.AppendAsync(s, request, Ct);
        Assert.Equal(expected, await _postgres!.AppendAsync(s, request, Ct));
    }

    private static AppendRequest Data(string text, ProducerClaim? producer = null, bool close = false, string? streamSeq = null) =>
        new() { ContentType = Octets, Body = Encoding.UTF8.GetBytes(text), Producer = producer, Close = close, StreamSeq = streamSeq };

    private static AppendRequest Json(string text) => new() { ContentType = "application/json", Body = Encoding.UTF8.GetBytes(text) };

    private static async Task<string> ReadAllAsync(IStreamStore store, string s)
    {
        using var read = await store.ReadAsync(s, new ReadRequest(DurableStreams.Protocol.OffsetQuery.Beginning, 1 << 20), Ct);
        return read.Status + ":" + string.Concat(read.Chunks.Select(c => Encoding.UTF8.GetString(c.Span)));
    }
}
