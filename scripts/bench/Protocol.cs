using System.Buffers;
using System.Buffers.Text;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;

namespace DurableStreams.Bench;

/// <summary>The few Durable Streams requests the scenarios need, each checking what the protocol promises.</summary>
internal static class Protocol
{
    public const string OctetStream = "application/octet-stream";
    public const string Json = "application/json";
    public const string StartOffset = "-1";

    /// <summary>A client for one scenario run: plain HTTP/1.1 keep-alive, no proxy, no compression.</summary>
    public static HttpClient CreateClient(int connections)
    {
        var handler = new SocketsHttpHandler
        {
            MaxConnectionsPerServer = connections,
            UseProxy = false,
            UseCookies = false,
            AllowAutoRedirect = false,
            AutomaticDecompression = DecompressionMethods.None,
            ConnectTimeout = TimeSpan.FromSeconds(10),

            // The Node server closes idle keep-alive connections after 5 s; never reuse one that old.
            PooledConnectionIdleTimeout = TimeSpan.FromSeconds(2),
        };
        return new HttpClient(handler, disposeHandler: true) { Timeout = TimeSpan.FromSeconds(90) };
    }

    /// <summary>PUT a new stream; it must answer 201 with a Stream-Next-Offset.</summary>
    public static async Task<string> CreateAsync(HttpClient client, Uri stream, string contentType, CancellationToken cancellationToken)
    {
        using var content = new ByteArrayContent([]);
        content.Headers.ContentType = new MediaTypeHeaderValue(contentType);
        using var request = new HttpRequestMessage(HttpMethod.Put, stream) { Content = content };
        using var response = await client.SendAsync(request, cancellationToken);
        if (response.StatusCode != HttpStatusCode.Created)
        {
            throw new BenchFailureException($"PUT {stream.AbsolutePath} answered {(int)response.StatusCode}, expected 201");
        }

        return NextOffset(response, "PUT");
    }

    /// <summary>POST bytes to a stream; it must answer 204 (or 200) with a Stream-Next-Offset.</summary>
    public static async Task<string> AppendAsync(
        HttpClient client, Uri stream, ArraySegment<byte> body, string contentType, CancellationToken cancellationToken)
    {
        using var content = new ByteArrayContent(body.Array!, body.Offset, body.Count);
        content.Headers.ContentType = new MediaTypeHeaderValue(contentType);
        using var request = new HttpRequestMessage(HttpMethod.Post, stream) { Content = content };
        using var response = await client.SendAsync(request, cancellationToken);
        if (response.StatusCode is not (HttpStatusCode.NoContent or HttpStatusCode.OK))
        {
            var text = await response.Content.ReadAsStringAsync(cancellationToken);
            throw new BenchFailureException(
                $"POST {stream.AbsolutePath} answered {(int)response.StatusCode}, expected 204: {Truncate(text)}");
        }

        return NextOffset(response, "POST");
    }

    /// <summary>HEAD a stream; it must exist (200 with Stream-Next-Offset).</summary>
    public static async Task<string> HeadAsync(HttpClient client, Uri stream, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(HttpMethod.Head, stream);
        using var response = await client.SendAsync(request, cancellationToken);
        if (response.StatusCode != HttpStatusCode.OK)
        {
            throw new BenchFailureException($"HEAD {stream.AbsolutePath} answered {(int)response.StatusCode}, expected 200");
        }

        return NextOffset(response, "HEAD");
    }

    public static Uri ReadUri(Uri stream, string offset, bool longPoll = false) =>
        new(stream.AbsoluteUri + "?offset=" + Uri.EscapeDataString(offset) + (longPoll ? "&live=long-poll" : string.Empty));

    /// <summary>
    /// Catch-up read of a whole stream: follows Stream-Next-Offset from the start until Stream-Up-To-Date, checking
    /// that every response with data moves the offset strictly forward. Returns the bodies and the final offset.
    /// </summary>
    public static async Task<(List<byte[]> Bodies, string Tail)> ReadAllAsync(
        HttpClient client, Uri stream, bool json, int maxRequests, CancellationToken cancellationToken)
    {
        var bodies = new List<byte[]>();
        var offset = StartOffset;
        for (var i = 0; i < maxRequests; i++)
        {
            using var response = await client.GetAsync(ReadUri(stream, offset), HttpCompletionOption.ResponseContentRead, cancellationToken);
            if (response.StatusCode != HttpStatusCode.OK)
            {
                throw new BenchFailureException($"GET {stream.AbsolutePath}?offset={offset} answered {(int)response.StatusCode}, expected 200");
            }

            var next = NextOffset(response, "GET");
            var body = await response.Content.ReadAsByteArrayAsync(cancellationToken);
            var upToDate = IsUpToDate(response);
            var hasData = json ? !IsEmptyJsonArray(body) : body.Length > 0;
            CheckAdvance(offset, next, hasData, upToDate);
            if (hasData)
            {
                bodies.Add(body);
            }

            if (upToDate)
            {
                return (bodies, next);
            }

            offset = next;
        }

        throw new BenchFailureException($"GET {stream.AbsolutePath}: no Stream-Up-To-Date after {maxRequests} reads");
    }

    /// <summary>Checks one catch-up step: data must move the offset forward, and a response that is not up to date must too.</summary>
    public static void CheckAdvance(string offset, string next, bool hasData, bool upToDate)
    {
        if (offset == StartOffset)
        {
            if (!hasData && !upToDate)
            {
                throw new BenchFailureException("a read without data did not say Stream-Up-To-Date");
            }

            return;
        }

        var order = string.CompareOrdinal(next, offset);
        if ((hasData || !upToDate) && order <= 0)
        {
            throw new BenchFailureException($"Stream-Next-Offset did not advance: {offset} -> {next}");
        }

        if (order < 0)
        {
            throw new BenchFailureException($"Stream-Next-Offset went backwards: {offset} -> {next}");
        }
    }

    public static string NextOffset(HttpResponseMessage response, string what)
    {
        if (response.Headers.TryGetValues("Stream-Next-Offset", out var values) && values.FirstOrDefault() is { Length: > 0 } value)
        {
            return value;
        }

        throw new BenchFailureException($"{what} answered {(int)response.StatusCode} without Stream-Next-Offset");
    }

    public static bool IsUpToDate(HttpResponseMessage response) =>
        response.Headers.TryGetValues("Stream-Up-To-Date", out var values)
        && values.Any(v => string.Equals(v.Trim(), "true", StringComparison.OrdinalIgnoreCase));

    private static bool IsEmptyJsonArray(byte[] body)
    {
        var span = body.AsSpan().Trim(" \t\r\n"u8);
        return span.Length == 0 || span.SequenceEqual("[]"u8);
    }

    private static string Truncate(string text) => text.Length <= 200 ? text : text[..200] + "...";
}

/// <summary>The 100-byte records the append scenarios write: "W" + writer (4 digits) + "S" + sequence (10 digits), padding, newline.</summary>
internal static class Record
{
    public const int Size = 100;

    public static void Write(Span<byte> destination, int writer, long sequence)
    {
        destination = destination[..Size];
        destination.Fill((byte)'.');
        destination[0] = (byte)'W';
        _ = Utf8Formatter.TryFormat(writer, destination.Slice(1, 4), out _, new StandardFormat('D', 4));
        destination[5] = (byte)'S';
        _ = Utf8Formatter.TryFormat(sequence, destination.Slice(6, 10), out _, new StandardFormat('D', 10));
        destination[Size - 1] = (byte)'\n';
    }

    public static (int Writer, long Sequence) Parse(ReadOnlySpan<byte> record, long position)
    {
        if (record.Length != Size || record[0] != (byte)'W' || record[5] != (byte)'S' || record[Size - 1] != (byte)'\n'
            || !Utf8Parser.TryParse(record.Slice(1, 4), out int writer, out var n1) || n1 != 4
            || !Utf8Parser.TryParse(record.Slice(6, 10), out long sequence, out var n2) || n2 != 10
            || record[16..(Size - 1)].ContainsAnyExcept((byte)'.'))
        {
            throw new BenchFailureException(string.Create(CultureInfo.InvariantCulture, $"corrupt record at byte {position} of the stream"));
        }

        return (writer, sequence);
    }

    /// <summary>
    /// Checks the concatenated stream content: whole records, each writer's sequence numbers 0, 1, 2, ... in order, and
    /// exactly <paramref name="expectedPerWriter"/>[w] records of writer w.
    /// </summary>
    public static void VerifyStream(IReadOnlyList<byte[]> bodies, IReadOnlyDictionary<int, long> expectedPerWriter)
    {
        var next = expectedPerWriter.Keys.ToDictionary(w => w, _ => 0L);
        long position = 0;
        var pending = new byte[Size];
        var pendingLength = 0;
        foreach (var body in bodies)
        {
            // Records may be split across responses (a server may cut a read anywhere).
            var span = body.AsSpan();
            while (span.Length > 0)
            {
                var take = Math.Min(Size - pendingLength, span.Length);
                span[..take].CopyTo(pending.AsSpan(pendingLength));
                pendingLength += take;
                span = span[take..];
                if (pendingLength == Size)
                {
                    var (writer, sequence) = Parse(pending, position);
                    if (!next.TryGetValue(writer, out var expected))
                    {
                        throw new BenchFailureException($"record of unknown writer {writer} at byte {position}");
                    }

                    if (sequence != expected)
                    {
                        throw new BenchFailureException(
                            string.Create(CultureInfo.InvariantCulture, $"writer {writer}: record {sequence} where {expected} was expected (byte {position})"));
                    }

                    next[writer] = expected + 1;
                    position += Size;
                    pendingLength = 0;
                }
            }
        }

        if (pendingLength != 0)
        {
            throw new BenchFailureException(string.Create(CultureInfo.InvariantCulture, $"stream ends with a partial record ({pendingLength} bytes)"));
        }

        foreach (var (writer, expected) in expectedPerWriter)
        {
            if (next[writer] != expected)
            {
                throw new BenchFailureException(
                    string.Create(CultureInfo.InvariantCulture, $"writer {writer}: {next[writer]} records in the stream, {expected} appends acknowledged"));
            }
        }
    }
}

/// <summary>Latency and rate helpers.</summary>
internal static class Stats
{
    public static double Milliseconds(long ticks) => ticks * 1000.0 / Stopwatch.Frequency;

    public static double Seconds(long ticks) => ticks / (double)Stopwatch.Frequency;

    /// <summary>Nearest-rank percentile in milliseconds of latencies in Stopwatch ticks.</summary>
    public static double PercentileMs(List<long> ticks, double percentile)
    {
        if (ticks.Count == 0)
        {
            return double.NaN;
        }

        ticks.Sort();
        var rank = (int)Math.Ceiling(percentile / 100.0 * ticks.Count);
        return Milliseconds(ticks[Math.Clamp(rank - 1, 0, ticks.Count - 1)]);
    }

    public static double Median(IReadOnlyList<double> values)
    {
        var sorted = values.Order().ToArray();
        if (sorted.Length == 0)
        {
            return double.NaN;
        }

        var mid = sorted.Length / 2;
        return sorted.Length % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
    }
}
