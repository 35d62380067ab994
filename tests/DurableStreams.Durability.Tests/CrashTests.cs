using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using DurableStreams.Protocol;
using DurableStreams.Testing;
using Xunit;

namespace DurableStreams.Durability.Tests;

/// <summary>
/// Crash tests with a real process: <c>durable-streams serve --data-dir … --durability always</c> takes concurrent
/// appends over HTTP and is SIGKILLed at a seeded point, several times over the same directory. After each restart every
/// acknowledged append is present exactly once, in order, at the offset it was acknowledged with; nothing torn is
/// served; appends that were in flight are either wholly present or wholly absent; and idempotent producers' retries
/// of their in-flight requests answer 204 if applied (200 if not) without ever writing a second copy.
/// </summary>
public sealed class CrashTests : IDisposable
{
    private const int Seed = 20250101;
    private const int Cycles = 3;
    private const int StreamsPerKind = 4;
    private const int WritersPerStream = 2;
    private const string OctetType = "application/octet-stream";
    private const string JsonType = "application/json";
    private static readonly TimeSpan Guard = TimeSpan.FromSeconds(60);

    private readonly TempDirectory _directory = new();

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private enum Fate
    {
        /// <summary>2xx received: must be present, once, at its acknowledged offset, from now on.</summary>
        Acknowledged,
        /// <summary>Sent when the server died, outcome unknown until the next restart.</summary>
        InFlight,
        /// <summary>An in-flight append found wholly present after the restart: must stay, once.</summary>
        Present,
        /// <summary>An in-flight append found absent after the restart: must never appear.</summary>
        Lost,
    }

    private sealed class Append(int n, byte[] body, string[] messages)
    {
        public int N { get; } = n;

        /// <summary>The request body (for octet streams also exactly the stored bytes).</summary>
        public byte[] Body { get; } = body;

        /// <summary>JSON only: the stored messages' text.</summary>
        public string[] Messages { get; } = messages;

        public Fate Fate { get; set; } = Fate.InFlight;

        /// <summary>Stream-Next-Offset of the acknowledgement (raw header and position).</summary>
        public string? AckOffset { get; set; }

        public long AckPosition { get; set; }

        /// <summary>Status of the retry after a restart (producers' in-flight appends only).</summary>
        public HttpStatusCode? RetryStatus { get; set; }

        /// <summary>The kill cycle the acknowledgement came in.</summary>
        public int AckCycle { get; set; } = -1;
    }

    private sealed class Writer(int id, string stream, bool json)
    {
        private readonly Random _random = new(Seed + id);

        public int Id { get; } = id;
        public string Stream { get; } = stream;
        public bool Json { get; } = json;
        public string ProducerId => "producer-" + Id.ToString(CultureInfo.InvariantCulture);
        public List<Append> Appends { get; } = [];

        public Append Next()
        {
            var n = Appends.Count;
            Append append;
            if (Json)
            {
                var first = $"{{\"p\":{Id},\"n\":{n},\"k\":0,\"pad\":\"{new string('j', _random.Next(0, 600))}\"}}";
                var second = $"{{\"p\":{Id},\"n\":{n},\"k\":1}}";
                append = new Append(n, Encoding.UTF8.GetBytes($"[{first},{second}]"), [first, second]);
            }
            else
            {
                var length = _random.Next(1, 5000);
                var header = Encoding.ASCII.GetBytes($"[{Id}:{n}:{length}]");
                var payload = new byte[length];
                for (var i = 0; i < length; i++)
                {
                    payload[i] = (byte)('a' + (((Id * 31) + (n * 7) + i) % 26));
                }
                append = new Append(n, [.. header, .. payload], []);
            }
            Appends.Add(append);
            return append;
        }
    }

    private sealed class Cycle(int number, int killAt)
    {
        private int _acknowledged;

        public int Number { get; } = number;

        public int KillAt { get; } = killAt;
        public TaskCompletionSource KillNow { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public volatile bool Killing;
        public ConcurrentQueue<string> Errors { get; } = new();

        public int Acknowledged => Volatile.Read(ref _acknowledged);

        public void OnAcknowledged()
        {
            if (Interlocked.Increment(ref _acknowledged) == KillAt)
            {
                KillNow.TrySetResult();
            }
        }
    }

    public void Dispose() => _directory.Dispose();

    [Fact]
    public async Task Acknowledged_appends_survive_repeated_SIGKILL_exactly_once_and_in_order()
    {
        var random = new Random(Seed);
        var writers = new List<Writer>();
        for (var s = 0; s < StreamsPerKind; s++)
        {
            for (var w = 0; w < WritersPerStream; w++)
            {
                writers.Add(new Writer(writers.Count, "bin-" + s, json: false));
            }
        }
        for (var s = 0; s < StreamsPerKind; s++)
        {
            for (var w = 0; w < WritersPerStream; w++)
            {
                writers.Add(new Writer(writers.Count, "json-" + s, json: true));
            }
        }
        var streams = writers.GroupBy(w => w.Stream).ToDictionary(g => g.Key, g => g.ToList());
        var output = TestContext.Current.TestOutputHelper;
        var totalInFlight = 0;

        for (var cycle = 0; cycle <= Cycles; cycle++)
        {
            await using var server = await ServerProcess.StartAsync(_directory.Path, Ct);
            using var http = new HttpClient { Timeout = Guard };
            Dictionary<string, long> tails;
            if (cycle == 0)
            {
                foreach (var (name, members) in streams)
                {
                    using var put = new HttpRequestMessage(HttpMethod.Put, server.StreamUrl(name)) { Content = new ByteArrayContent([]) };
                    put.Content.Headers.ContentType = new MediaTypeHeaderValue(members[0].Json ? JsonType : OctetType);
                    using var created = await http.SendAsync(put, Ct);
                    Assert.Equal(HttpStatusCode.Created, created.StatusCode);
                }
                tails = streams.Keys.ToDictionary(k => k, _ => 0L);
            }
            else
            {
                tails = await VerifyAfterRestartAsync(http, server, streams);
            }
            if (cycle == Cycles)
            {
                var all = writers.SelectMany(w => w.Appends).ToList();
                output?.WriteLine($"final tails: {string.Join(", ", tails.Select(t => $"{t.Key}={t.Value}"))}");
                output?.WriteLine($"{all.Count} appends, {all.Count(a => a.AckCycle >= 0)} acknowledged when sent; octet in flight: "
                    + $"{all.Count(a => a.Fate == Fate.Present && a.RetryStatus is null)} applied, {all.Count(a => a.Fate == Fate.Lost)} not; "
                    + $"producer retries: {all.Count(a => a.RetryStatus == HttpStatusCode.NoContent)} x 204, {all.Count(a => a.RetryStatus == HttpStatusCode.OK)} x 200");
                // The kills must have caught requests in flight, or the in-flight half of the checks did not run.
                Assert.True(totalInFlight > 0, "no append was in flight at any kill");
                break;
            }

            var state = new Cycle(cycle, random.Next(60, 240));
            var running = writers.Select(w => Task.Run(() => RunWriterAsync(http, server, w, state), Ct)).ToArray();
            await state.KillNow.Task.WaitAsync(Guard, Ct);
            state.Killing = true;
            await server.KillAsync();
            await Task.WhenAll(running).WaitAsync(Guard, Ct);

            Assert.True(state.Errors.IsEmpty, string.Join("\n", state.Errors) + "\nserver stderr:\n" + server.Stderr);
            var inFlight = writers.Count(w => w.Appends.Count > 0 && w.Appends[^1].Fate == Fate.InFlight);
            totalInFlight += inFlight;
            output?.WriteLine($"cycle {cycle}: killed after {state.Acknowledged} acknowledged appends (kill point {state.KillAt}), {inFlight} in flight");
            // Offsets keep increasing across restarts: every new acknowledgement lies past the tail the cycle began at.
            foreach (var writer in writers)
            {
                foreach (var append in writer.Appends.Where(a => a.AckCycle == cycle))
                {
                    Assert.True(append.AckPosition > tails[writer.Stream], $"{writer.Stream}: offset {append.AckPosition} not past the restart tail {tails[writer.Stream]}");
                }
            }
        }
    }

    private static async Task RunWriterAsync(HttpClient http, ServerProcess server, Writer writer, Cycle cycle)
    {
        while (true)
        {
            var append = writer.Next();
            HttpResponseMessage response;
            try
            {
                response = await PostAsync(http, server, writer, append);
            }
            catch (Exception ex) when (ex is HttpRequestException or IOException or TaskCanceledException)
            {
                // The server is gone (or going): the outcome of this append is unknown until the restart.
                if (!cycle.Killing)
                {
                    cycle.Errors.Enqueue($"writer {writer.Id} append {append.N} failed before the kill: {ex.Message}");
                }
                return;
            }
            using (response)
            {
                var expected = writer.Json ? HttpStatusCode.OK : HttpStatusCode.NoContent;
                if (response.StatusCode != expected)
                {
                    cycle.Errors.Enqueue($"writer {writer.Id} append {append.N}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync(Ct)}");
                    return;
                }
                append.Fate = Fate.Acknowledged;
                append.AckOffset = NextOffsetOf(response);
                append.AckPosition = PositionOf(append.AckOffset);
                append.AckCycle = cycle.Number;
            }
            cycle.OnAcknowledged();
        }
    }

    private static async Task<HttpResponseMessage> PostAsync(HttpClient http, ServerProcess server, Writer writer, Append append)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, server.StreamUrl(writer.Stream)) { Content = new ByteArrayContent(append.Body) };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue(writer.Json ? JsonType : OctetType);
        if (writer.Json)
        {
            request.Headers.Add(ProtocolHeaders.ProducerId, writer.ProducerId);
            request.Headers.Add(ProtocolHeaders.ProducerEpoch, "0");
            request.Headers.Add(ProtocolHeaders.ProducerSeq, append.N.ToString(CultureInfo.InvariantCulture));
        }
        return await http.SendAsync(request, Ct);
    }

    /// <summary>Checks every stream after a restart, retries the producers' in-flight appends, and returns the tails.</summary>
    private static async Task<Dictionary<string, long>> VerifyAfterRestartAsync(HttpClient http, ServerProcess server, Dictionary<string, List<Writer>> streams)
    {
        var tails = new Dictionary<string, long>();
        foreach (var (name, members) in streams)
        {
            if (members[0].Json)
            {
                await VerifyJsonAsync(http, server, name, members, resolveInFlight: true);
                foreach (var writer in members)
                {
                    await RetryInFlightAsync(http, server, writer);
                }
                tails[name] = await VerifyJsonAsync(http, server, name, members, resolveInFlight: false);
                // After the retries every producer sequence is present exactly once, without gaps.
                foreach (var writer in members)
                {
                    Assert.All(writer.Appends, a => Assert.True(a.Fate is Fate.Acknowledged or Fate.Present, $"{name}: producer {writer.Id} seq {a.N} is {a.Fate}"));
                }
            }
            else
            {
                tails[name] = await VerifyOctetAsync(http, server, name, members);
            }
        }
        return tails;
    }

    /// <summary>
    /// Parses an octet stream into whole records (header <c>[writer:n:length]</c> plus generated bytes) and checks them
    /// against what each writer sent; resolves in-flight appends to present or lost.
    /// </summary>
    private static async Task<long> VerifyOctetAsync(HttpClient http, ServerProcess server, string name, List<Writer> members)
    {
        var (content, tail) = await ReadAllAsync(http, server.StreamUrl(name));
        Assert.Equal(content.Length, tail);
        var found = members.ToDictionary(w => w.Id, _ => new List<(int N, long End)>());
        var position = 0;
        while (position < content.Length)
        {
            var close = Array.IndexOf(content, (byte)']', position, Math.Min(32, content.Length - position));
            var header = close > position ? Encoding.ASCII.GetString(content, position, close - position + 1) : string.Empty;
            var parts = header.Length > 2 ? header[1..^1].Split(':') : [];
            Assert.True(content[position] == '[' && parts.Length == 3, $"{name}: no record header at byte {position} (torn or foreign bytes)");
            var writerId = int.Parse(parts[0], CultureInfo.InvariantCulture);
            var n = int.Parse(parts[1], CultureInfo.InvariantCulture);
            var writer = members.SingleOrDefault(w => w.Id == writerId);
            Assert.True(writer is not null && n < writer.Appends.Count, $"{name}: record {header} at byte {position} was never sent to this stream");
            var body = writer.Appends[n].Body;
            Assert.True(position + body.Length <= content.Length, $"{name}: record {header} at byte {position} is cut short");
            Assert.True(content.AsSpan(position, body.Length).SequenceEqual(body), $"{name}: record {header} at byte {position} is damaged");
            position += body.Length;
            found[writerId].Add((n, position));
        }

        foreach (var writer in members)
        {
            var records = found[writer.Id];
            for (var i = 1; i < records.Count; i++)
            {
                Assert.True(records[i].N > records[i - 1].N, $"{name}: writer {writer.Id} has record {records[i].N} after {records[i - 1].N} (duplicate or reordered)");
            }
            var ends = records.ToDictionary(r => r.N, r => r.End);
            foreach (var append in writer.Appends)
            {
                var present = ends.TryGetValue(append.N, out var end);
                switch (append.Fate)
                {
                    case Fate.Acknowledged:
                        Assert.True(present, $"{name}: acknowledged append {writer.Id}:{append.N} is missing");
                        Assert.Equal(append.AckPosition, end);
                        break;
                    case Fate.Present:
                        Assert.True(present, $"{name}: append {writer.Id}:{append.N} was present after an earlier restart and is gone now");
                        break;
                    case Fate.Lost:
                        Assert.False(present, $"{name}: append {writer.Id}:{append.N} was absent after an earlier restart and appeared later");
                        break;
                    default:
                        append.Fate = present ? Fate.Present : Fate.Lost;
                        break;
                }
            }
        }
        return tail;
    }

    /// <summary>
    /// Checks a JSON stream: every append's two messages adjacent and whole, each producer's sequences increasing and
    /// never repeated, acknowledged ones present, and each acknowledged offset followed by exactly the next message.
    /// </summary>
    private static async Task<long> VerifyJsonAsync(HttpClient http, ServerProcess server, string name, List<Writer> members, bool resolveInFlight)
    {
        var (pages, tail) = await ReadAllJsonAsync(http, server.StreamUrl(name));
        var messages = pages.SelectMany(p => p).ToList();
        Assert.True(messages.Count % 2 == 0, $"{name}: odd number of messages ({messages.Count}): an append was split");
        var index = members.ToDictionary(w => w.Id, _ => new Dictionary<int, int>());
        var lastN = members.ToDictionary(w => w.Id, _ => -1);
        for (var i = 0; i < messages.Count; i += 2)
        {
            using var document = JsonDocument.Parse(messages[i]);
            var writerId = document.RootElement.GetProperty("p").GetInt32();
            var n = document.RootElement.GetProperty("n").GetInt32();
            var writer = members.SingleOrDefault(w => w.Id == writerId);
            Assert.True(writer is not null && n < writer.Appends.Count, $"{name}: message {messages[i]} was never sent to this stream");
            Assert.Equal(writer.Appends[n].Messages[0], messages[i]);
            Assert.Equal(writer.Appends[n].Messages[1], messages[i + 1]);
            Assert.True(n > lastN[writerId], $"{name}: producer {writerId} seq {n} after seq {lastN[writerId]} (duplicate or reordered)");
            lastN[writerId] = n;
            index[writerId][n] = i;
        }

        var acknowledged = new List<(int Index, Append Append)>();
        foreach (var writer in members)
        {
            foreach (var append in writer.Appends)
            {
                var present = index[writer.Id].TryGetValue(append.N, out var at);
                switch (append.Fate)
                {
                    case Fate.Acknowledged:
                        Assert.True(present, $"{name}: acknowledged producer {writer.Id} seq {append.N} is missing");
                        acknowledged.Add((at, append));
                        break;
                    case Fate.Present:
                        Assert.True(present, $"{name}: producer {writer.Id} seq {append.N} was present and is gone now");
                        break;
                    case Fate.Lost:
                        Assert.Fail($"{name}: producer {writer.Id} seq {append.N} was left unresolved");
                        break;
                    default:
                        Assert.True(resolveInFlight, $"{name}: producer {writer.Id} seq {append.N} is still in flight");
                        // Only the producer's last request can be in flight, so absent means "not applied".
                        Assert.True(present || index[writer.Id].Keys.All(k => k < append.N));
                        break;
                }
            }
        }

        // Offsets: strictly increasing in stream order, and each one is exactly where the next message starts.
        acknowledged.Sort((a, b) => a.Index.CompareTo(b.Index));
        for (var i = 1; i < acknowledged.Count; i++)
        {
            Assert.True(acknowledged[i].Append.AckPosition > acknowledged[i - 1].Append.AckPosition, $"{name}: offsets not increasing");
        }
        foreach (var (at, append) in acknowledged)
        {
            using var response = await http.GetAsync(new Uri(server.StreamUrl(name) + "?offset=" + Uri.EscapeDataString(append.AckOffset!)), Ct);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            var following = ParseArray(await response.Content.ReadAsByteArrayAsync(Ct));
            if (at + 2 < messages.Count)
            {
                Assert.True(following.Count > 0, $"{name}: nothing after acknowledged offset {append.AckOffset}");
                Assert.Equal(messages[at + 2], following[0]);
            }
            else
            {
                Assert.Empty(following);
            }
        }
        return tail;
    }

    private static async Task RetryInFlightAsync(HttpClient http, ServerProcess server, Writer writer)
    {
        if (writer.Appends.Count == 0 || writer.Appends[^1].Fate != Fate.InFlight)
        {
            return;
        }
        var append = writer.Appends[^1];
        var (pages, _) = await ReadAllJsonAsync(http, server.StreamUrl(writer.Stream));
        var applied = pages.SelectMany(p => p).Contains(append.Messages[0]);
        using var response = await PostAsync(http, server, writer, append);
        // 204: the retry is a duplicate of an applied append; 200: the append was not applied and now is.
        Assert.Equal(applied ? HttpStatusCode.NoContent : HttpStatusCode.OK, response.StatusCode);
        append.RetryStatus = response.StatusCode;
        append.Fate = Fate.Present;
        if (!applied)
        {
            append.Fate = Fate.Acknowledged;
            append.AckOffset = NextOffsetOf(response);
            append.AckPosition = PositionOf(append.AckOffset);
        }
    }

    private static async Task<(byte[] Content, long Tail)> ReadAllAsync(HttpClient http, Uri url)
    {
        var pages = new List<byte[]>();
        var tail = await ReadPagesAsync(http, url, pages);
        return ([.. pages.SelectMany(p => p)], tail);
    }

    private static async Task<(List<List<string>> Pages, long Tail)> ReadAllJsonAsync(HttpClient http, Uri url)
    {
        var pages = new List<byte[]>();
        var tail = await ReadPagesAsync(http, url, pages);
        return ([.. pages.Select(ParseArray)], tail);
    }

    /// <summary>Catch-up reads from the start until Stream-Up-To-Date; returns the tail position.</summary>
    private static async Task<long> ReadPagesAsync(HttpClient http, Uri url, List<byte[]> pages)
    {
        var offset = "-1";
        for (var guard = 0; guard < 10_000; guard++)
        {
            using var response = await http.GetAsync(new Uri(url + "?offset=" + Uri.EscapeDataString(offset)), Ct);
            Assert.True(response.StatusCode == HttpStatusCode.OK, $"GET {url} offset {offset}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync(Ct)}");
            pages.Add(await response.Content.ReadAsByteArrayAsync(Ct));
            var next = NextOffsetOf(response);
            if (response.Headers.TryGetValues(ProtocolHeaders.StreamUpToDate, out var upToDate) && upToDate.Single() == "true")
            {
                return PositionOf(next);
            }
            Assert.NotEqual(offset, next);
            offset = next;
        }
        Assert.Fail($"GET {url} never reached the tail");
        return 0;
    }

    private static List<string> ParseArray(byte[] body)
    {
        if (body.Length == 0)
        {
            return [];
        }
        using var document = JsonDocument.Parse(body);
        return [.. document.RootElement.EnumerateArray().Select(e => e.GetRawText())];
    }

    private static string NextOffsetOf(HttpResponseMessage response)
    {
        Assert.True(response.Headers.TryGetValues(ProtocolHeaders.StreamNextOffset, out var values), "no Stream-Next-Offset");
        return values.Single();
    }

    private static long PositionOf(string offset)
    {
        Assert.True(StreamOffset.TryParse(offset, out var parsed), $"unparsable offset {offset}");
        return parsed.Position;
    }
}
