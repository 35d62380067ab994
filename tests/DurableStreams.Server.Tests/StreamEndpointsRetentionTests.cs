using System.Net;
using System.Text.Json;
using DurableStreams.Core.Memory;
using DurableStreams.Core.Retention;
using DurableStreams.Server.Tests.Infrastructure;
using Xunit;

namespace DurableStreams.Server.Tests;

/// <summary>A server in front of a memory store whose retention the tests trigger (every stream keeps its last 5 bytes).</summary>
public sealed class RetentionFixture : ServerFixture
{
    public static readonly RetentionPolicy Policy = new(null, 5);

    public MemoryStreamStore Store { get; } = new(new MemoryStreamStoreOptions
    {
        Retention = new RetentionPolicies([new RetentionRule("**", Policy)]),
    });

    protected override void Configure(DurableStreamServerOptions options) => options.Store = Store;

    /// <summary>Runs one retention pass over <paramref name="name"/>, as the retention job would.</summary>
    public async Task<RetentionResult> TrimAsync(string name, CancellationToken cancellationToken) =>
        await ((IStreamRetention)Store).ApplyRetentionAsync(name, Policy, cancellationToken);
}

/// <summary>Reads below a stream's retained start (issue 18): 410 with Stream-Retained-Start in every read mode; HEAD shows the start.</summary>
public sealed class StreamEndpointsRetentionTests(RetentionFixture fixture) : IClassFixture<RetentionFixture>
{
    private readonly ServerHarness _server = fixture.Harness;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>A stream of three 5-byte appends trimmed to its last one: the retained start is 10, the tail 15.</summary>
    private async Task<string> TrimmedStreamAsync()
    {
        var name = ServerHarness.NewName();
        await _server.CreateAsync(name, "application/octet-stream", "aaaaa", Ct);
        await _server.AppendAsync(name, "application/octet-stream", "bbbbb", Ct);
        await _server.AppendAsync(name, "application/octet-stream", "ccccc", Ct);
        var result = await fixture.TrimAsync(name, Ct);
        Assert.Equal(RetentionStatus.Trimmed, result.Status);
        Assert.Equal(10, result.RetainedStart.Position);
        return name;
    }

    [Fact]
    public async Task HEAD_of_an_untrimmed_stream_says_its_data_starts_at_zero()
    {
        var name = ServerHarness.NewName();
        await _server.CreateAsync(name, "text/plain", "abc", Ct);

        using var head = await _server.SendAsync(HttpMethod.Head, name, null, Ct);

        Assert.Equal(HttpStatusCode.OK, head.StatusCode);
        Assert.Equal(Http.Offset(0), Http.Header(head, "Stream-Retained-Start"));
    }

    [Fact]
    public async Task HEAD_of_a_trimmed_stream_shows_the_retained_start()
    {
        var name = await TrimmedStreamAsync();

        using var head = await _server.SendAsync(HttpMethod.Head, name, null, Ct);

        Assert.Equal(HttpStatusCode.OK, head.StatusCode);
        Assert.Equal(Http.Offset(10), Http.Header(head, "Stream-Retained-Start"));
        Assert.Equal(Http.Offset(15), Http.Header(head, "Stream-Next-Offset"));
    }

    [Theory]
    [InlineData("")]
    [InlineData("&live=long-poll")]
    [InlineData("&live=sse")]
    public async Task A_read_below_the_retained_start_answers_410_with_the_start_in_a_header_and_a_JSON_body(string live)
    {
        var name = await TrimmedStreamAsync();

        using var response = await _server.GetAsync($"{name}?offset={Http.Offset(5)}{live}", Ct);

        var body = await response.Content.ReadAsStringAsync(Ct);
        Assert.Equal(HttpStatusCode.Gone, response.StatusCode);
        Assert.Equal(Http.Offset(10), Http.Header(response, "Stream-Retained-Start"));
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        Http.SecurityHeaders(response);
        using var json = JsonDocument.Parse(body);
        var error = json.RootElement.GetProperty("error");
        Assert.Equal("BEFORE_RETAINED_START", error.GetProperty("code").GetString());
        Assert.Equal(Http.Offset(10), error.GetProperty("retained_start").GetString());
        Assert.Contains(Http.Offset(10), error.GetProperty("message").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Offset_minus_one_and_offsets_at_or_above_the_start_read_what_remains()
    {
        var name = await TrimmedStreamAsync();

        var (all, tail) = await _server.ReadAllAsync(name, Ct);
        using var atStart = await _server.GetAsync($"{name}?offset={Http.Offset(10)}", Ct);
        using var above = await _server.GetAsync($"{name}?offset={Http.Offset(12)}", Ct);

        Assert.Equal(("ccccc", Http.Offset(15)), (all, tail));
        Assert.Equal("ccccc", await atStart.Content.ReadAsStringAsync(Ct));
        Assert.Equal("ccc", await above.Content.ReadAsStringAsync(Ct));
        Assert.Null(Http.Header(atStart, "Stream-Retained-Start"));
    }

    [Fact]
    public async Task A_deleted_stream_s_410_carries_no_retained_start()
    {
        var name = ServerHarness.NewName();
        await _server.CreateAsync(name, "text/plain", "abc", Ct);
        var fork = ServerHarness.NewName("fork");
        await _server.CreateAsync(fork, "text/plain", null, Ct, ("Stream-Forked-From", _server.Url(name).AbsolutePath));
        using (var deleted = await _server.SendAsync(HttpMethod.Delete, name, null, Ct))
        {
            Assert.Equal(HttpStatusCode.NoContent, deleted.StatusCode);
        }

        using var read = await _server.GetAsync($"{name}?offset=-1", Ct);

        await Http.ErrorAsync(read, HttpStatusCode.Gone);
        Assert.Null(Http.Header(read, "Stream-Retained-Start"));
    }

    [Fact]
    public async Task The_410_exposes_Stream_Retained_Start_to_browser_scripts()
    {
        var name = await TrimmedStreamAsync();

        using var response = await _server.GetAsync($"{name}?offset={Http.Offset(0)}", Ct, ("Origin", "https://anything.example"));

        Assert.Equal(HttpStatusCode.Gone, response.StatusCode);
        Assert.Contains("Stream-Retained-Start", Http.HeaderList(response, "Access-Control-Expose-Headers"), StringComparer.OrdinalIgnoreCase);
    }
}
