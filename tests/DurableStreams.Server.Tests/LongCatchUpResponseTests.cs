using System.Net;
using DurableStreams.Protocol;
using DurableStreams.Server.Internal;
using DurableStreams.Server.Tests.Infrastructure;
using DurableStreams.Testing;
using DurableStreams.Storage.Files;
using Xunit;

namespace DurableStreams.Server.Tests;

/// <summary>
/// Catch-up responses of byte streams longer than one store read (1 MiB): read and sent piece by piece, with headers
/// (length, next offset, ETag, up-to-date, closed) that describe the whole range up front.
/// </summary>
public sealed class LongCatchUpResponseTests
{
    private const int Piece = StreamEndpoints.ReadPieceBytes;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static byte[] Pattern(int length)
    {
        var bytes = new byte[length];
        for (var i = 0; i < bytes.Length; i++)
        {
            bytes[i] = (byte)(i % 251);
        }
        return bytes;
    }

    private static async Task<byte[]> WriteAsync(ServerHarness server, string name, int length, bool close = false)
    {
        var data = Pattern(length);
        using (var create = await server.PutAsync(name, "application/octet-stream", null, Ct))
        {
            Assert.Equal(HttpStatusCode.Created, create.StatusCode);
        }
        // Appends of uneven sizes, so pieces never line up with append boundaries.
        var cuts = new[] { 0, 700_000, 1_900_000, length };
        for (var i = 0; i + 1 < cuts.Length; i++)
        {
            using var content = new ByteArrayContent(data, cuts[i], cuts[i + 1] - cuts[i]);
            content.Headers.ContentType = new("application/octet-stream");
            using var request = ServerHarness.Request(HttpMethod.Post, name, content);
            if (close && i + 2 == cuts.Length)
            {
                request.Headers.Add("Stream-Closed", "true");
            }
            using var append = await server.SendAsync(request, Ct);
            Assert.Equal(HttpStatusCode.NoContent, append.StatusCode);
        }
        return data;
    }

    [Fact]
    public async Task A_stream_of_several_pieces_comes_back_in_one_response_that_reaches_the_tail()
    {
        await using var server = await ServerHarness.StartAsync(cancellationToken: Ct);
        var name = ServerHarness.NewName();
        var data = await WriteAsync(server, name, (2 * Piece) + (Piece / 2) + 3);

        using var response = await server.GetAsync($"{name}?offset=-1", Ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(data.Length, response.Content.Headers.ContentLength);
        Assert.Equal(data, await response.Content.ReadAsByteArrayAsync(Ct));
        Assert.Equal(Http.Offset(data.Length), Http.Header(response, "Stream-Next-Offset"));
        Assert.Equal("true", Http.Header(response, "Stream-Up-To-Date"));
        Assert.Null(Http.Header(response, "Stream-Closed"));
        Assert.EndsWith($":0:{data.Length}\"", response.Headers.ETag!.Tag, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_response_stops_at_MaxReadChunkBytes_even_across_pieces_and_the_next_one_continues_there()
    {
        const int cap = Piece + (Piece / 2);
        await using var server = await ServerHarness.StartAsync(o => o.MaxReadChunkBytes = cap, cancellationToken: Ct);
        var name = ServerHarness.NewName();
        var data = await WriteAsync(server, name, (3 * Piece) + 5, close: true);

        var received = new List<byte>();
        var offset = "-1";
        var pages = new List<(long Length, string Next, bool UpToDate, bool Closed)>();
        while (true)
        {
            using var response = await server.GetAsync($"{name}?offset={offset}", Ct);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            var body = await response.Content.ReadAsByteArrayAsync(Ct);
            Assert.Equal(body.Length, response.Content.Headers.ContentLength);
            received.AddRange(body);
            var next = Http.Header(response, "Stream-Next-Offset")!;
            var upToDate = Http.Header(response, "Stream-Up-To-Date") == "true";
            pages.Add((body.Length, next, upToDate, Http.Header(response, "Stream-Closed") == "true"));
            if (upToDate)
            {
                break;
            }
            offset = next;
        }

        Assert.Equal(data, received.ToArray());
        Assert.Equal([cap, cap, data.Length - (2L * cap)], pages.Select(p => p.Length));
        Assert.Equal([Http.Offset(cap), Http.Offset(2 * cap), Http.Offset(data.Length)], pages.Select(p => p.Next));
        Assert.Equal([false, false, true], pages.Select(p => p.UpToDate));
        Assert.Equal([false, false, true], pages.Select(p => p.Closed));
    }

    [Fact]
    public async Task The_file_store_serves_a_long_response_from_positioned_reads_across_append_boundaries()
    {
        using var directory = new TempDirectory();
        await using var store = FileStreamStore.Open(new FileStreamStoreOptions { DataDirectory = directory.Path, Durability = DurabilityMode.None });
        await using var server = await ServerHarness.StartAsync(o => o.Store = store, cancellationToken: Ct);
        var name = ServerHarness.NewName();
        var data = await WriteAsync(server, name, (2 * Piece) + 77);

        using var response = await server.GetAsync($"{name}?offset={Http.Offset(5)}", Ct);

        Assert.Equal(data.AsSpan(5).ToArray(), await response.Content.ReadAsByteArrayAsync(Ct));
        Assert.Equal("true", Http.Header(response, "Stream-Up-To-Date"));
    }

    [Fact]
    public async Task A_long_response_is_read_from_the_store_in_slices_no_larger_than_CatchUpSliceBytes()
    {
        using var directory = new TempDirectory();
        await using var store = FileStreamStore.Open(new FileStreamStoreOptions { DataDirectory = directory.Path, Durability = DurabilityMode.None });
        var observed = new ObservedStore(store);
        await using var server = await ServerHarness.StartAsync(o => o.Store = observed, cancellationToken: Ct);
        var name = ServerHarness.NewName();
        var data = await WriteAsync(server, name, (3 * Piece) + 11);
        var asked = new System.Collections.Concurrent.ConcurrentQueue<(long Position, int MaxBytes)>();
        observed.BeforeRead = (stream, request) =>
        {
            if (stream == name)
            {
                asked.Enqueue((request.Offset.Offset.Position, request.MaxBytes));
            }
        };

        using var response = await server.GetAsync($"{name}?offset=-1", Ct);

        Assert.Equal(data, await response.Content.ReadAsByteArrayAsync(Ct));
        Assert.Equal(data.Length, response.Content.Headers.ContentLength);
        Assert.Equal(Http.Offset(data.Length), Http.Header(response, "Stream-Next-Offset"));
        Assert.Equal("true", Http.Header(response, "Stream-Up-To-Date"));
        // Every store read, the first included, is one slice: what the response holds at once does not grow with its length.
        Assert.All(asked, read => Assert.InRange(read.MaxBytes, 1, StreamEndpoints.CatchUpSliceBytes));
        // After the first, each slice ends where one of the file store's frames ends (64 KiB from each append's start,
        // or the append's end: WriteAsync's cuts), so no frame is read and checked twice.
        var appends = new long[] { 0, 700_000, 1_900_000, data.Length };
        foreach (var (position, maxBytes) in asked.Skip(1))
        {
            var sliceEnd = position + maxBytes;
            var append = Array.FindLastIndex(appends, start => start < sliceEnd);
            Assert.True(sliceEnd == appends[append + 1] || (sliceEnd - appends[append]) % FileStreamStore.MaxFrameBytes == 0, $"a slice ending at {sliceEnd} cuts a frame");
        }
        Assert.InRange(asked.Count, (data.Length + StreamEndpoints.CatchUpSliceBytes - 1) / StreamEndpoints.CatchUpSliceBytes, data.Length / (StreamEndpoints.CatchUpSliceBytes / 2));
    }

    [Fact]
    public async Task A_long_JSON_response_is_read_from_the_store_in_slices_no_larger_than_CatchUpSliceBytes()
    {
        await using var server = await ServerHarness.StartAsync(cancellationToken: Ct);
        var name = ServerHarness.NewName();
        using (var create = await server.PutAsync(name, "application/json", null, Ct))
        {
            Assert.Equal(HttpStatusCode.Created, create.StatusCode);
        }
        var body = new System.Text.StringBuilder("[");
        for (var i = 0; i < 30_000; i++)
        {
            body.Append(i == 0 ? "" : ",").Append("{\"i\":").Append(i).Append(",\"pad\":\"").Append('x', 80).Append("\"}");
        }
        using (var content = new StringContent(body.Append(']').ToString(), System.Text.Encoding.UTF8))
        {
            content.Headers.ContentType = new("application/json");
            using var append = await server.SendAsync(ServerHarness.Request(HttpMethod.Post, name, content), Ct);
            Assert.Equal(HttpStatusCode.NoContent, append.StatusCode);
        }
        var asked = new System.Collections.Concurrent.ConcurrentQueue<int>();
        server.Store.BeforeRead = (stream, request) =>
        {
            if (stream == name)
            {
                asked.Enqueue(request.MaxBytes);
            }
        };

        using var response = await server.GetAsync($"{name}?offset=-1", Ct);

        using var document = System.Text.Json.JsonDocument.Parse(await response.Content.ReadAsStringAsync(Ct));
        Assert.Equal(30_000, document.RootElement.GetArrayLength());
        Assert.Equal("true", Http.Header(response, "Stream-Up-To-Date"));
        Assert.True(asked.Count > 30, $"{asked.Count} store reads for about 3 MiB");
        Assert.All(asked, maxBytes => Assert.InRange(maxBytes, 1, StreamEndpoints.CatchUpSliceBytes));
    }

    [Fact]
    public async Task A_matching_If_None_Match_gets_304_for_the_whole_long_range()
    {
        await using var server = await ServerHarness.StartAsync(cancellationToken: Ct);
        var name = ServerHarness.NewName();
        await WriteAsync(server, name, (2 * Piece) + 10);
        string etag;
        using (var first = await server.GetAsync($"{name}?offset=-1", Ct))
        {
            etag = first.Headers.ETag!.Tag;
        }

        using var again = await server.GetAsync($"{name}?offset=-1", Ct, ("If-None-Match", etag));

        Assert.Equal(HttpStatusCode.NotModified, again.StatusCode);
        Assert.Equal(Http.Offset((2 * Piece) + 10), Http.Header(again, "Stream-Next-Offset"));
    }

    [Fact]
    public async Task A_stream_deleted_between_pieces_aborts_the_response_instead_of_ending_it_short()
    {
        await using var server = await ServerHarness.StartAsync(cancellationToken: Ct);
        var name = ServerHarness.NewName();
        await WriteAsync(server, name, (2 * Piece) + 10);
        var store = server.Store;
        store.BeforeRead = (stream, request) =>
        {
            // The second piece of the response: the stream disappears before it is read.
            if (stream == name && request.Offset.Kind == OffsetKind.At && request.Offset.Offset.Position > 0)
            {
                store.Inner.DeleteAsync(name).AsTask().GetAwaiter().GetResult();
            }
        };

        using var response = await server.Client.GetAsync($"{name}?offset=-1", HttpCompletionOption.ResponseHeadersRead, Ct);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal((2L * Piece) + 10, response.Content.Headers.ContentLength);

        await Assert.ThrowsAnyAsync<Exception>(async () => await response.Content.ReadAsByteArrayAsync(Ct));
    }
}

/// <summary>
/// JSON catch-up responses longer than one store read: one valid array to the tail the first read saw, sent piece by
/// piece, unless a cap (<c>MaxReadChunkBytes</c>) is set.
/// </summary>
public sealed class LongJsonCatchUpResponseTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>Appends <paramref name="count"/> messages of about 100 bytes each, in batches of 1,000.</summary>
    private static async Task AppendJsonAsync(ServerHarness server, string name, int from, int count)
    {
        for (var batch = from; batch < from + count; batch += 1000)
        {
            var body = new System.Text.StringBuilder("[");
            for (var i = batch; i < Math.Min(batch + 1000, from + count); i++)
            {
                body.Append(i == batch ? "" : ",").Append("{\"i\":").Append(i).Append(",\"pad\":\"").Append('x', 80).Append("\"}");
            }
            body.Append(']');
            using var content = new StringContent(body.ToString(), System.Text.Encoding.UTF8);
            content.Headers.ContentType = new("application/json");
            using var request = ServerHarness.Request(HttpMethod.Post, name, content);
            using var append = await server.SendAsync(request, Ct);
            Assert.Equal(HttpStatusCode.NoContent, append.StatusCode);
        }
    }

    private static async Task<string> CreateJsonAsync(ServerHarness server, int count)
    {
        var name = ServerHarness.NewName();
        using (var create = await server.PutAsync(name, "application/json", null, Ct))
        {
            Assert.Equal(HttpStatusCode.Created, create.StatusCode);
        }
        await AppendJsonAsync(server, name, 0, count);
        return name;
    }

    private static int[] Indexes(string body)
    {
        using var document = System.Text.Json.JsonDocument.Parse(body);
        return [.. document.RootElement.EnumerateArray().Select(e => e.GetProperty("i").GetInt32())];
    }

    [Fact]
    public async Task A_JSON_stream_of_several_pieces_comes_back_in_one_array_that_reaches_the_tail()
    {
        await using var server = await ServerHarness.StartAsync(cancellationToken: Ct);
        var name = await CreateJsonAsync(server, 40_000); // about 4 MiB: four pieces

        using var response = await server.GetAsync($"{name}?offset=-1", Ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var body = await response.Content.ReadAsStringAsync(Ct);
        Assert.Equal(System.Text.Encoding.UTF8.GetByteCount(body), response.Content.Headers.ContentLength);
        Assert.Equal(Enumerable.Range(0, 40_000), Indexes(body));
        Assert.Equal("true", Http.Header(response, "Stream-Up-To-Date"));
        Assert.Equal(Http.Offset(response.Content.Headers.ContentLength!.Value - 1), Http.Header(response, "Stream-Next-Offset"));
        Assert.EndsWith($":{response.Content.Headers.ContentLength - 1}\"", response.Headers.ETag!.Tag, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_file_store_serves_a_long_JSON_array_from_a_middle_offset()
    {
        using var directory = new TempDirectory();
        await using var store = FileStreamStore.Open(new FileStreamStoreOptions { DataDirectory = directory.Path, Durability = DurabilityMode.None });
        await using var server = await ServerHarness.StartAsync(o => o.Store = store, cancellationToken: Ct);
        var name = await CreateJsonAsync(server, 30_000);
        // Message 0 is stored as its text and a comma; the next message starts right after.
        var middle = Http.Offset(System.Text.Encoding.UTF8.GetByteCount("{\"i\":0,\"pad\":\"" + new string('x', 80) + "\"}") + 1);

        using var response = await server.GetAsync($"{name}?offset={middle}", Ct);

        Assert.Equal(Enumerable.Range(1, 29_999), Indexes(await response.Content.ReadAsStringAsync(Ct)));
        Assert.Equal("true", Http.Header(response, "Stream-Up-To-Date"));
    }

    [Fact]
    public async Task Messages_appended_while_a_long_JSON_response_is_sent_are_left_for_the_next_read()
    {
        await using var server = await ServerHarness.StartAsync(cancellationToken: Ct);
        var name = await CreateJsonAsync(server, 30_000);
        var store = server.Store;
        var appended = false;
        store.BeforeRead = (stream, request) =>
        {
            // Before the second piece is read, more messages arrive after the tail the first read saw.
            if (stream == name && !appended && request.Offset.Kind == OffsetKind.At && request.Offset.Offset.Position > 0)
            {
                appended = true;
                AppendJsonAsync(server, name, 30_000, 5_000).GetAwaiter().GetResult();
            }
        };

        using var response = await server.GetAsync($"{name}?offset=-1", Ct);

        Assert.True(appended);
        Assert.Equal(Enumerable.Range(0, 30_000), Indexes(await response.Content.ReadAsStringAsync(Ct)));
        Assert.Equal("true", Http.Header(response, "Stream-Up-To-Date"));
        store.BeforeRead = null;
        using var rest = await server.GetAsync($"{name}?offset={Http.Header(response, "Stream-Next-Offset")}", Ct);
        Assert.Equal(Enumerable.Range(30_000, 5_000), Indexes(await rest.Content.ReadAsStringAsync(Ct)));
    }

    [Fact]
    public async Task A_JSON_stream_deleted_between_pieces_aborts_the_response_instead_of_ending_it_short()
    {
        await using var server = await ServerHarness.StartAsync(cancellationToken: Ct);
        var name = await CreateJsonAsync(server, 30_000);
        var store = server.Store;
        store.BeforeRead = (stream, request) =>
        {
            if (stream == name && request.Offset.Kind == OffsetKind.At && request.Offset.Offset.Position > 0)
            {
                store.Inner.DeleteAsync(name).AsTask().GetAwaiter().GetResult();
            }
        };

        using var response = await server.Client.GetAsync($"{name}?offset=-1", HttpCompletionOption.ResponseHeadersRead, Ct);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);

        await Assert.ThrowsAnyAsync<Exception>(async () => await response.Content.ReadAsByteArrayAsync(Ct));
    }

    [Fact]
    public async Task With_a_cap_a_JSON_response_holds_one_piece_and_is_not_up_to_date()
    {
        await using var server = await ServerHarness.StartAsync(o => o.MaxReadChunkBytes = 8 * 1024 * 1024, cancellationToken: Ct);
        var name = await CreateJsonAsync(server, 30_000);

        using var response = await server.GetAsync($"{name}?offset=-1", Ct);

        var body = await response.Content.ReadAsStringAsync(Ct);
        // One read of the whole cap (at most a piece), not the first slice only: the page ends where that read stops.
        Assert.InRange(body.Length, StreamEndpoints.CatchUpSliceBytes + 1, StreamEndpoints.ReadPieceBytes + 1);
        Assert.Null(Http.Header(response, "Stream-Up-To-Date"));
        Assert.Equal(Enumerable.Range(0, Indexes(body).Length), Indexes(body));
    }

    [Fact]
    public async Task Without_a_cap_a_byte_stream_longer_than_8_MiB_comes_back_in_one_response()
    {
        await using var server = await ServerHarness.StartAsync(cancellationToken: Ct);
        var name = ServerHarness.NewName();
        var data = new byte[(9 * 1024 * 1024) + 3];
        new Random(21).NextBytes(data);
        using (var create = await server.PutAsync(name, "application/octet-stream", null, Ct))
        {
            Assert.Equal(HttpStatusCode.Created, create.StatusCode);
        }
        using (var content = new ByteArrayContent(data))
        {
            content.Headers.ContentType = new("application/octet-stream");
            using var append = await server.SendAsync(ServerHarness.Request(HttpMethod.Post, name, content), Ct);
            Assert.Equal(HttpStatusCode.NoContent, append.StatusCode);
        }

        using var response = await server.GetAsync($"{name}?offset=-1", Ct);

        Assert.Equal(data, await response.Content.ReadAsByteArrayAsync(Ct));
        Assert.Equal("true", Http.Header(response, "Stream-Up-To-Date"));
    }
}
