using System.Text;
using System.Text.Json;
using DurableStreams.Client;
using Xunit;

namespace DurableStreams.Cli.Tests;

/// <summary><c>-o/--output</c> on the commands that print data, and its older spellings.</summary>
public sealed partial class ClientCommandTests
{
    [Fact]
    public async Task Head_writes_a_table_json_or_jsonl_and_keeps_json_as_an_alias()
    {
        await _client.CreateAsync("meta-o", new CreateStreamOptions { ContentType = "application/json", Body = "[1]"u8.ToArray() }, Token);

        var table = await RunAsync(["head", "meta-o", "-o", "table"]);
        var json = await RunAsync(["head", "meta-o", "--output", "json"]);
        var jsonLines = await RunAsync(["info", "meta-o", "-o", "jsonl"]);
        var alias = await RunAsync(["head", "meta-o", "--json"]);
        var fallback = await RunAsync(["head", "meta-o"]);

        Assert.All(new[] { table, json, jsonLines, alias, fallback }, run => Assert.Equal(0, run.ExitCode));
        Assert.StartsWith("Stream:         meta-o\n", table.Output.ReplaceLineEndings("\n"), StringComparison.Ordinal);
        Assert.Equal(table.Output, fallback.Output);
        Assert.EndsWith("\n", json.Output, StringComparison.Ordinal);
        Assert.Single(Lines(json.Output));
        using var parsed = JsonDocument.Parse(json.Output);
        Assert.Equal("meta-o", parsed.RootElement.GetProperty("stream").GetString());
        Assert.False(parsed.RootElement.GetProperty("closed").GetBoolean());
        Assert.Equal("0000000000000000_0000000000000000", parsed.RootElement.GetProperty("retainedStart").GetString());
        Assert.Equal(json.Output, jsonLines.Output);
        Assert.Equal(json.Output, alias.Output);
    }

    [Fact]
    public async Task Read_output_option_and_its_format_alias_write_the_same_and_raw_JSON_ends_each_batch_with_a_newline()
    {
        await _client.CreateAsync("batches", new CreateStreamOptions { ContentType = "application/json", Body = "[1,2]"u8.ToArray() }, Token);
        await _client.AppendAsync("batches", "[3]", "application/json", cancellationToken: Token);

        var raw = await RunAsync(["read", "batches"]);
        var rawNamed = await RunAsync(["read", "batches", "-o", "raw"]);
        var jsonLines = await RunAsync(["read", "batches", "-o", "jsonl"]);
        var aliased = await RunAsync(["read", "batches", "--format", "jsonl"]);
        var json = await RunAsync(["follow", "batches", "--output", "json", "--max-messages", "3"]);

        Assert.All(new[] { raw, rawNamed, jsonLines, aliased, json }, run => Assert.Equal(0, run.ExitCode));
        // The server may join the two appends into one batch; each batch is one JSON array on its own line.
        Assert.Contains(raw.Stdout, new[] { "[1,2]\n[3]\n", "[1,2,3]\n" });
        Assert.Equal(raw.Stdout, rawNamed.Stdout);
        Assert.Equal("1\n2\n3\n", jsonLines.Stdout);
        Assert.Equal(jsonLines.Stdout, aliased.Stdout);
        Assert.Equal("[1,2,3]\n", json.Stdout);
    }

    [Fact]
    public async Task Read_of_a_text_stream_writes_the_bytes_as_stored_without_adding_a_newline()
    {
        await _client.CreateAsync("text-o", new CreateStreamOptions { ContentType = "text/plain", Body = "no newline"u8.ToArray() }, Token);

        var run = await RunAsync(["read", "text-o", "-o", "raw"]);

        Assert.Equal(0, run.ExitCode);
        Assert.Equal("no newline", run.Stdout);
    }

    [Fact]
    public async Task Create_fork_and_append_write_their_result_as_one_JSON_line_only_when_asked()
    {
        var quiet = await RunAsync(["create", "res", "--json"]);
        var again = await RunAsync(["create", "res", "--json", "-o", "json"]);
        var append = await RunAsync(["append", "res", "[1,2]", "--output", "jsonl"]);
        var fork = await RunAsync(["fork", "res", "res-copy", "-o", "json"]);

        Assert.All(new[] { quiet, again, append, fork }, run => Assert.Equal(0, run.ExitCode));
        Assert.Equal("", quiet.Output);
        var tail = (await _client.GetMetadataAsync("res", Token)).NextOffset;
        Assert.Equal("""{"stream":"res","outcome":"existed","contentType":"application/json","nextOffset":"0000000000000000_0000000000000000","closed":false}""" + "\n", again.Output.ReplaceLineEndings("\n"));
        Assert.Equal($$"""{"stream":"res","nextOffset":"{{tail}}"}""" + "\n", append.Output.ReplaceLineEndings("\n"));
        Assert.Equal($$"""{"stream":"res-copy","outcome":"created","contentType":"application/json","nextOffset":"{{tail}}","closed":false}""" + "\n", fork.Output.ReplaceLineEndings("\n"));
        Assert.Equal("Created stream 'res-copy'.", Assert.Single(Lines(fork.Error)));
    }

    [Theory]
    [InlineData("Invalid value 'table' for --output: create writes json or jsonl.", "create", "s", "-o", "table")]
    [InlineData("Invalid value 'raw' for --output: append writes json or jsonl.", "append", "s", "x", "-o", "raw")]
    [InlineData("Invalid value 'raw' for --output: head writes table, json or jsonl.", "head", "s", "-o", "raw")]
    [InlineData("Invalid value 'table' for --output: read writes raw, json, jsonl or pretty.", "read", "s", "-o", "table")]
    [InlineData("Invalid value 'table' for --output: follow writes raw, json, jsonl or pretty.", "follow", "s", "--output", "table")]
    [InlineData("Invalid value 'pretty' for --output: ls writes table, json, jsonl or raw.", "ls", "-o", "pretty")]
    [InlineData("Invalid value 'yaml' for --format: read writes raw, json, jsonl or pretty.", "read", "s", "--format", "yaml")]
    [InlineData("--output cannot be used with --format.", "read", "s", "-o", "json", "--format", "jsonl")]
    [InlineData("--output cannot be used with --json.", "head", "s", "-o", "table", "--json")]
    [InlineData("--output cannot be used with --long.", "ls", "-o", "json", "-l")]
    public async Task An_output_format_a_command_cannot_write_is_a_usage_error_that_lists_the_ones_it_can(string message, params string[] args)
    {
        var run = await RunLineAsync([.. args, "--url", Url]);

        Assert.Equal(2, run.ExitCode);
        Assert.Equal(message, Assert.Single(Lines(run.Error)));
        Assert.Equal("", run.Output);
    }

    [Fact]
    public async Task Ls_filters_by_prefix_and_lists_size_closed_and_expiry_in_every_format()
    {
        await using var server = new DurableStreams.Server.DurableStreamServer(new DurableStreams.Server.DurableStreamServerOptions { Host = "127.0.0.1", Port = 0, Store = _store, Registry = true });
        await server.StartAsync(Token);
        var url = server.StreamsUrl.ToString();
        using var client = new DurableStreamClient(new DurableStreamClientOptions { BaseUrl = server.StreamsUrl });
        await client.CreateAsync("logs/app", new CreateStreamOptions { ContentType = "text/plain", Body = Encoding.UTF8.GetBytes(new string('x', 1536)) }, Token);
        await client.CreateAsync("logs/db", new CreateStreamOptions { ContentType = "text/plain", Body = "12345"u8.ToArray(), Closed = true }, Token);
        await client.CreateAsync("logs/tmp", new CreateStreamOptions { ContentType = "text/plain", Ttl = TimeSpan.FromHours(1) }, Token);
        await client.CreateAsync("orders", new CreateStreamOptions { ContentType = "application/json" }, Token);

        var names = await RunAsync(["ls", "logs/", "--url", url]);
        var table = await RunAsync(["ls", "logs/", "--url", url], terminal: true);
        var jsonLines = await RunAsync(["ls", "logs/", "-o", "jsonl", "--url", url]);
        var json = await RunAsync(["ls", "logs/", "-o", "json", "--url", url]);
        var withoutExpiry = await RunAsync(["ls", "logs/d", "-o", "table", "--url", url]);

        Assert.All(new[] { names, table, jsonLines, json, withoutExpiry }, run => Assert.Equal(0, run.ExitCode));
        Assert.Equal(["logs/app", "logs/db", "logs/tmp"], Lines(names.Output));
        var rows = table.Output.ReplaceLineEndings("\n").Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(4, rows.Length);
        Assert.Matches(@"^NAME +CONTENT TYPE +SIZE +CLOSED +CREATED \(UTC\) +EXPIRES \(UTC\)$", rows[0]);
        Assert.Matches(@"^logs/app +text/plain +1\.5 KiB +no +\d{4}-\d\d-\d\d \d\d:\d\d:\d\d +-$", rows[1]);
        Assert.Matches(@"^logs/db +text/plain +5 B +yes +\d{4}-\d\d-\d\d \d\d:\d\d:\d\d +-$", rows[2]);
        Assert.Matches(@"^logs/tmp +text/plain +0 B +no +\d{4}-\d\d-\d\d \d\d:\d\d:\d\d +(TTL 1h|\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)$", rows[3]);
        Assert.Equal(rows[0].IndexOf("SIZE", StringComparison.Ordinal) + 4, rows[1].IndexOf("KiB", StringComparison.Ordinal) + 3); // sizes right-aligned
        Assert.DoesNotContain("EXPIRES", withoutExpiry.Output, StringComparison.Ordinal);

        var objects = Lines(jsonLines.Output).Select(line => JsonDocument.Parse(line).RootElement).ToArray();
        Assert.Equal(["logs/app", "logs/db", "logs/tmp"], objects.Select(o => o.GetProperty("name").GetString()));
        Assert.Equal([1536L, 5L, 0L], objects.Select(o => o.GetProperty("size").GetInt64()));
        Assert.Equal([false, true, false], objects.Select(o => o.GetProperty("closed").GetBoolean()));
        Assert.Equal(3600, objects[2].GetProperty("ttlSeconds").GetInt64());
        Assert.Equal(JsonValueKind.Null, objects[0].GetProperty("ttlSeconds").ValueKind);
        using var array = JsonDocument.Parse(json.Output);
        Assert.Equal(objects.Select(o => o.GetRawText()), array.RootElement.EnumerateArray().Select(e => e.GetRawText()));
        Assert.EndsWith("\n", json.Output, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(0L, "0 B")]
    [InlineData(1023L, "1023 B")]
    [InlineData(1024L, "1.0 KiB")]
    [InlineData(1536L, "1.5 KiB")]
    [InlineData(5L * 1024 * 1024 * 1024, "5.0 GiB")]
    public void Ls_table_sizes_are_human_readable(long bytes, string expected) => Assert.Equal(expected, ListCommand.FormatSize(bytes));
}
