using System.Net;
using System.Text.Json;
using DurableStreams.Server.Internal;
using DurableStreams.Server.Tests.Infrastructure;
using Xunit;

namespace DurableStreams.Server.Tests;

/// <summary>
/// The server's side of State-Protocol compaction (issue 18): offsets carry the stream's generation everywhere the
/// server writes one, a stale offset answers 410 and an unissued one 400, ETags differ by generation, and the admin-scoped
/// <c>POST __ds/compact/{stream}</c> route. The store is <see cref="GenerationStore"/> (offset-space moves without rewriting bytes).
/// </summary>
public sealed class StreamEndpointsCompactionTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private const string Json = "application/json";

    private static string Change(string key, string operation, int value) =>
        $$$"""{"type":"user","key":"{{{key}}}","value":{"v":{{{value}}}},"headers":{"operation":"{{{operation}}}"}}""";

    /// <summary>A JSON stream of one key updated <paramref name="updates"/> times; returns its tail.</summary>
    private static async Task<string> StateStreamAsync(ServerHarness server, string name, int updates = 5)
    {
        await server.CreateAsync(name, Json, null, Ct);
        var tail = await server.AppendAsync(name, Json, "[" + Change("a", "insert", 0) + "]", Ct);
        for (var i = 1; i <= updates; i++)
        {
            tail = await server.AppendAsync(name, Json, "[" + Change("a", "update", i) + "]", Ct);
        }
        return tail;
    }

    private static Task<ServerHarness> StartAsync(GenerationStore store, Action<DurableStreamServerOptions>? configure = null) =>
        ServerHarness.StartAsync(o =>
        {
            o.Store = store;
            configure?.Invoke(o);
        }, cancellationToken: Ct);

    private static async Task<HttpResponseMessage> CompactAsync(ServerHarness server, string name, string? token = null)
    {
        using var request = ServerHarness.Request(HttpMethod.Post, "__ds/compact/" + name);
        if (token is not null)
        {
            request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", token);
        }
        return await server.SendAsync(request, Ct);
    }

    /// <summary>A GET that returns once the headers arrive (an SSE body is read as it comes).</summary>
    private static Task<HttpResponseMessage> OpenAsync(ServerHarness server, string nameAndQuery) =>
        server.Client.SendAsync(ServerHarness.Request(HttpMethod.Get, nameAndQuery), HttpCompletionOption.ResponseHeadersRead, Ct);

    [Fact]
    public async Task The_compact_route_compacts_the_stream_and_answers_the_outcome_with_formatted_offsets()
    {
        await using var store = new GenerationStore();
        await using var server = await StartAsync(store);
        var name = ServerHarness.NewName();
        var tail = await StateStreamAsync(server, name);

        using var response = await CompactAsync(server, name);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync(Ct));
        var root = body.RootElement;
        Assert.Equal("compacted", root.GetProperty("outcome").GetString());
        Assert.Equal(Http.Position(tail), root.GetProperty("bytesBefore").GetInt64());
        Assert.InRange(root.GetProperty("bytesAfter").GetInt64(), 1, Http.Position(tail) - 1);
        Assert.Equal(6, root.GetProperty("messagesBefore").GetInt64());
        Assert.Equal(1, root.GetProperty("liveKeys").GetInt32());
        Assert.Equal(0, root.GetProperty("unknownMessages").GetInt32());
        Assert.False(root.GetProperty("partial").GetBoolean());
        Assert.Equal(1, root.GetProperty("offsetGeneration").GetInt64());
        Assert.Equal("0000000000000001_" + tail[17..], root.GetProperty("compactedEnd").GetString());
        Assert.StartsWith("0000000000000001_", root.GetProperty("retainedStart").GetString(), StringComparison.Ordinal);
        Assert.Equal(1, store.Commits);
    }

    [Fact]
    public async Task Compacting_again_with_nothing_appended_answers_notDue()
    {
        await using var store = new GenerationStore();
        await using var server = await StartAsync(store);
        var name = ServerHarness.NewName();
        await StateStreamAsync(server, name);
        using (await CompactAsync(server, name))
        {
        }

        using var again = await CompactAsync(server, name);

        Assert.Equal(HttpStatusCode.OK, again.StatusCode);
        using var body = JsonDocument.Parse(await again.Content.ReadAsStringAsync(Ct));
        Assert.Equal("notDue", body.RootElement.GetProperty("outcome").GetString());
        Assert.Equal(1, store.Commits);
    }

    [Fact]
    public async Task The_compact_route_answers_404_for_an_unknown_stream_409_for_a_byte_stream_and_405_for_GET()
    {
        await using var store = new GenerationStore();
        await using var server = await StartAsync(store);
        var bytes = ServerHarness.NewName();
        await server.CreateAsync(bytes, "application/octet-stream", "abc", Ct);

        using var unknown = await CompactAsync(server, ServerHarness.NewName());
        using var notJson = await CompactAsync(server, bytes);
        using var get = await server.GetAsync("__ds/compact/" + bytes, Ct);
        using var noName = await CompactAsync(server, "");

        await Http.ErrorAsync(unknown, HttpStatusCode.NotFound);
        Assert.Contains("JSON", await Http.ErrorAsync(notJson, HttpStatusCode.Conflict), StringComparison.Ordinal);
        await Http.ErrorAsync(get, HttpStatusCode.MethodNotAllowed);
        await Http.ErrorAsync(noName, HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task The_compact_route_answers_503_when_the_store_cannot_compact()
    {
        await using var memory = new NoCompactionStore(new DurableStreams.Core.Memory.MemoryStreamStore());
        await using var server = new DurableStreamServer(new DurableStreamServerOptions { Port = 0, Host = "127.0.0.1", Store = memory });
        await server.StartAsync(Ct);
        using var client = new HttpClient { BaseAddress = server.StreamsUrl };

        using var response = await client.PostAsync("__ds/compact/x", null, Ct);

        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.Contains("compaction", await response.Content.ReadAsStringAsync(Ct), StringComparison.Ordinal);
    }

    /// <summary>A store without <see cref="DurableStreams.Core.Compaction.IStreamCompaction"/> (private: not a shared test wrapper).</summary>
    private sealed class NoCompactionStore(DurableStreams.Core.IStreamStore inner) : DurableStreams.Testing.ForwardingStore(inner);

    [Fact]
    public async Task A_second_compaction_of_the_same_stream_waits_for_the_first()
    {
        await using var store = new GenerationStore { HoldCommit = new(TaskCreationOptions.RunContinuationsAsynchronously) };
        await using var server = await StartAsync(store);
        var name = ServerHarness.NewName();
        await StateStreamAsync(server, name);

        var first = CompactAsync(server, name);
        await store.CommitEntered.Task.WaitAsync(Ct);
        var second = CompactAsync(server, name);
        store.HoldCommit!.SetResult();
        using var firstResponse = await first;
        using var secondResponse = await second;

        // Had both run at once, both would have read the same prefix and the second would end in "conflict".
        var outcomes = new string[]
        {
            JsonDocument.Parse(await firstResponse.Content.ReadAsStringAsync(Ct)).RootElement.GetProperty("outcome").GetString()!,
            JsonDocument.Parse(await secondResponse.Content.ReadAsStringAsync(Ct)).RootElement.GetProperty("outcome").GetString()!,
        };
        Assert.Equal(["compacted", "notDue"], outcomes);
        Assert.Equal(1, store.Commits);
    }

    [Fact]
    public async Task The_keyed_gate_lets_one_holder_per_key_in_and_forgets_keys_nobody_holds()
    {
        var gate = new KeyedGate();
        var first = await gate.EnterAsync("a", Ct);
        var other = await gate.EnterAsync("b", Ct);
        var second = gate.EnterAsync("a", Ct).AsTask();

        Assert.False(second.IsCompleted);
        first.Dispose();
        using (await second.WaitAsync(Ct))
        {
            Assert.Equal(2, gate.Count);
        }
        other.Dispose();
        Assert.Equal(0, gate.Count);
    }

    [Fact]
    public async Task After_a_compaction_every_offset_the_server_writes_carries_the_new_generation_and_sorts_after_the_old_ones()
    {
        await using var store = new GenerationStore();
        await using var server = await StartAsync(store);
        var name = ServerHarness.NewName();
        var before = await StateStreamAsync(server, name);
        using (await CompactAsync(server, name))
        {
        }

        using var head = await server.SendAsync(HttpMethod.Head, name, null, Ct);
        var appended = await server.AppendAsync(name, Json, "[" + Change("a", "update", 9) + "]", Ct);
        var (_, readTail) = await server.ReadAllAsync(name, Ct);
        using var sse = await OpenAsync(server, $"{name}?offset={before}&live=sse");
        using var reader = new SseReader(await sse.Content.ReadAsStreamAsync(Ct));
        await reader.ExpectAsync("data", Ct);
        var control = await reader.ExpectAsync("control", Ct);

        foreach (var offset in new[] { Http.Header(head, "Stream-Next-Offset")!, Http.Header(head, "Stream-Retained-Start")!, appended, readTail, control.Field("streamNextOffset")! })
        {
            Assert.StartsWith("0000000000000001_", offset, StringComparison.Ordinal);
        }
        Assert.True(string.CompareOrdinal(before, appended) < 0);
        Assert.True(string.CompareOrdinal(before, control.Field("streamNextOffset")) < 0);
    }

    [Theory]
    [InlineData("")]
    [InlineData("&live=long-poll")]
    [InlineData("&live=sse")]
    public async Task An_earlier_generation_offset_inside_the_compacted_range_answers_410_with_the_retained_start(string live)
    {
        await using var store = new GenerationStore();
        await using var server = await StartAsync(store);
        var name = ServerHarness.NewName();
        var first = await server.CreateAsync(name, Json, "[" + Change("a", "insert", 0) + "]", Ct);
        for (var i = 1; i <= 5; i++)
        {
            await server.AppendAsync(name, Json, "[" + Change("a", "update", i) + "]", Ct);
        }
        using (var compacted = await CompactAsync(server, name))
        {
            Assert.Contains("\"compacted\"", await compacted.Content.ReadAsStringAsync(Ct), StringComparison.Ordinal);
        }

        using var response = await OpenAsync(server, $"{name}?offset={first}{live}");

        Assert.Equal(HttpStatusCode.Gone, response.StatusCode);
        Assert.StartsWith("0000000000000001_", Http.Header(response, "Stream-Retained-Start"), StringComparison.Ordinal);
        using var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync(Ct));
        Assert.Equal(ResultMapping.BeforeRetainedStartCode, body.RootElement.GetProperty("error").GetProperty("code").GetString());
    }

    [Fact]
    public async Task An_earlier_generation_offset_at_the_compacted_end_stays_valid()
    {
        await using var store = new GenerationStore();
        await using var server = await StartAsync(store);
        var name = ServerHarness.NewName();
        var tail = await StateStreamAsync(server, name, updates: 1);
        using (await CompactAsync(server, name))
        {
        }
        await server.AppendAsync(name, Json, "[" + Change("b", "insert", 1) + "]", Ct);

        using var response = await server.GetAsync($"{name}?offset={tail}", Ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Contains("\"b\"", await response.Content.ReadAsStringAsync(Ct), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("")]
    [InlineData("&live=long-poll")]
    [InlineData("&live=sse")]
    public async Task An_offset_of_a_generation_the_stream_has_not_issued_answers_400(string live)
    {
        await using var store = new GenerationStore();
        await using var server = await StartAsync(store);
        var name = ServerHarness.NewName();
        await server.CreateAsync(name, Json, "[1]", Ct);

        using var response = await server.GetAsync($"{name}?offset=0000000000000001_0000000000000000{live}", Ct);

        Assert.Contains("generation", await Http.ErrorAsync(response, HttpStatusCode.BadRequest), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_fork_at_an_offset_of_a_generation_the_source_has_not_issued_answers_400()
    {
        await using var server = await ServerHarness.StartAsync(cancellationToken: Ct);
        var source = ServerHarness.NewName();
        await server.CreateAsync(source, Json, "[1]", Ct);

        using var response = await server.PutAsync(ServerHarness.NewName(), Json, null, Ct,
            ("Stream-Forked-From", server.Server.StreamsUrl.AbsolutePath + source), ("Stream-Fork-Offset", "0000000000000003_0000000000000000"));

        Assert.Contains("generation", await Http.ErrorAsync(response, HttpStatusCode.BadRequest), StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_SSE_reader_inside_a_range_that_gets_compacted_ends_instead_of_reading_on()
    {
        await using var store = new GenerationStore();
        // Small pieces: the catch-up takes one read per message, so the compaction lands between two of them.
        await using var server = await StartAsync(store, o => o.MaxReadChunkBytes = 64);
        var name = ServerHarness.NewName();
        var tail = await StateStreamAsync(server, name, updates: 3);
        var reads = 0;
        store.BeforeRead = stream =>
        {
            if (stream == name && Interlocked.Increment(ref reads) == 2)
            {
                store.Compact(name, Http.Position(tail));
            }
        };

        using var sse = await OpenAsync(server, $"{name}?offset=-1&live=sse");
        using var reader = new SseReader(await sse.Content.ReadAsStreamAsync(Ct));
        var events = new List<SseEvent>();
        while (await reader.ReadEventAsync(Ct) is { } e)
        {
            events.Add(e);
        }

        Assert.Equal(["data", "control"], events.Select(e => e.Type));
        Assert.StartsWith("0000000000000000_", events[1].Field("streamNextOffset"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_response_of_one_generation_never_matches_the_ETag_of_another()
    {
        await using var store = new GenerationStore();
        await using var server = await StartAsync(store);
        var name = ServerHarness.NewName();
        await StateStreamAsync(server, name);
        using var before = await server.GetAsync($"{name}?offset=-1", Ct);
        var etag = before.Headers.ETag!.Tag;
        using (await CompactAsync(server, name))
        {
        }

        using var after = await server.GetAsync($"{name}?offset=-1", Ct, ("If-None-Match", etag));

        Assert.Equal(HttpStatusCode.OK, after.StatusCode);
        Assert.NotEqual(etag, after.Headers.ETag!.Tag);
    }

    [Fact]
    public async Task A_long_JSON_catch_up_of_a_compacted_stream_reads_every_piece_in_the_current_generation()
    {
        await using var store = new GenerationStore();
        await using var server = await StartAsync(store);
        var name = ServerHarness.NewName();
        await server.CreateAsync(name, Json, null, Ct);
        // More than one read piece (1 MiB), so the response is sent piece by piece.
        var value = new string('x', 1000);
        var batch = "[" + string.Join(",", Enumerable.Range(0, 100).Select(i => $$$"""{"type":"t","key":"k{{{i}}}","value":"{{{value}}}","headers":{"operation":"upsert"}}""")) + "]";
        string tail = "";
        for (var i = 0; i < 15; i++)
        {
            tail = await server.AppendAsync(name, Json, batch, Ct);
        }
        store.Compact(name, Http.Position(tail));

        using var response = await server.GetAsync($"{name}?offset=-1", Ct);
        var body = await response.Content.ReadAsByteArrayAsync(Ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(1500, JsonDocument.Parse(body).RootElement.GetArrayLength());
        Assert.Equal("0000000000000001_" + tail[17..], Http.Header(response, "Stream-Next-Offset"));
    }

    [Fact]
    public async Task An_admin_token_may_compact_read_and_write_and_a_write_token_may_not_compact()
    {
        await using var store = new GenerationStore();
        await using var server = await StartAsync(store, o =>
        {
            o.WriteTokens.Add("writer");
            o.AdminTokens.Add("admin");
        });
        var name = ServerHarness.NewName();
        await server.CreateAsync(name, Json, "[" + Change("a", "insert", 0) + "," + Change("a", "update", 1) + "]", Ct, ("Authorization", "Bearer admin"));

        using var anonymous = await CompactAsync(server, name);
        using var writer = await CompactAsync(server, name, "writer");
        using var admin = await CompactAsync(server, name, "admin");
        using var read = await server.GetAsync($"{name}?offset=-1", Ct, ("Authorization", "Bearer admin"));

        Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);
        Assert.Contains("admin token", await Http.ErrorAsync(writer, HttpStatusCode.Forbidden), StringComparison.Ordinal);
        Assert.Contains("scope=\"admin\"", writer.Headers.WwwAuthenticate.ToString(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.OK, admin.StatusCode);
        Assert.Equal(HttpStatusCode.OK, read.StatusCode);
    }

    [Fact]
    public async Task With_tokens_but_no_admin_token_the_compact_route_says_an_admin_token_is_required()
    {
        await using var store = new GenerationStore();
        await using var server = await StartAsync(store, o => o.WriteTokens.Add("writer"));
        var name = ServerHarness.NewName();
        await server.CreateAsync(name, Json, "[1]", Ct, ("Authorization", "Bearer writer"));

        using var response = await CompactAsync(server, name, "writer");

        Assert.Contains("--admin-token", await Http.ErrorAsync(response, HttpStatusCode.Forbidden), StringComparison.Ordinal);
        Assert.Equal(0, store.Commits);
    }
}

/// <summary>The server over the real memory store's compaction: what a reader sees across a compaction.</summary>
public sealed class StreamEndpointsMemoryCompactionTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static string Change(string key, string operation, int value) =>
        $$$"""{"type":"user","key":"{{{key}}}","value":{"v":{{{value}}}},"headers":{"operation":"{{{operation}}}"}}""";

    [Fact]
    public async Task A_reader_s_offsets_stay_strictly_increasing_as_strings_across_a_compaction_and_a_new_reader_gets_the_snapshot()
    {
        await using var server = await ServerHarness.StartAsync(cancellationToken: Ct);
        var name = ServerHarness.NewName();
        await server.CreateAsync(name, "application/json", null, Ct);
        var offsets = new List<string>();
        for (var i = 0; i < 10; i++)
        {
            offsets.Add(await server.AppendAsync(name, "application/json", "[" + Change("a", i == 0 ? "insert" : "update", i) + "]", Ct));
        }
        var (before, _) = await server.ReadAllAsync(name, Ct);

        using (var compacted = await server.SendAsync(HttpMethod.Post, "__ds/compact/" + name, null, Ct))
        {
            Assert.Contains("\"compacted\"", await compacted.Content.ReadAsStringAsync(Ct), StringComparison.Ordinal);
        }
        // A reader that kept up (at the compacted end) reads on; every new offset sorts after every old one.
        offsets.Add(await server.AppendAsync(name, "application/json", "[" + Change("a", "update", 10) + "]", Ct));
        using var resumed = await server.GetAsync($"{name}?offset={offsets[^2]}", Ct);
        offsets.Add(Http.Header(resumed, "Stream-Next-Offset")!);
        using var stale = await server.GetAsync($"{name}?offset={offsets[3]}", Ct);
        var (after, tail) = await server.ReadAllAsync(name, Ct);

        Assert.Equal(HttpStatusCode.OK, resumed.StatusCode);
        Assert.Contains("\"v\":10", await resumed.Content.ReadAsStringAsync(Ct), StringComparison.Ordinal);
        for (var i = 1; i < offsets.Count - 1; i++)
        {
            Assert.True(string.CompareOrdinal(offsets[i - 1], offsets[i]) < 0, $"{offsets[i - 1]} !< {offsets[i]}");
        }
        Assert.Equal(offsets[^2], offsets[^1]);
        Assert.Equal(HttpStatusCode.Gone, stale.StatusCode);
        Assert.StartsWith("0000000000000001_", Http.Header(stale, "Stream-Retained-Start"), StringComparison.Ordinal);
        Assert.Equal(offsets[^1], tail);
        Assert.Equal(10, JsonDocument.Parse(before).RootElement.GetArrayLength());
        var messages = JsonDocument.Parse(after).RootElement.EnumerateArray().ToList();
        Assert.Contains(messages, m => m.TryGetProperty("headers", out var h) && h.GetProperty("control").GetString() == "snapshot-start");
        Assert.Contains("\"v\":9", after, StringComparison.Ordinal);
        Assert.Contains("\"v\":10", after, StringComparison.Ordinal);
        Assert.DoesNotContain("\"v\":8", after, StringComparison.Ordinal);
    }
}
