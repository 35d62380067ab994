using System.Globalization;
using System.Net;
using DurableStreams.Protocol;
using DurableStreams.Server.Tests.Infrastructure;
using Microsoft.Extensions.Time.Testing;
using Xunit;

namespace DurableStreams.Server.Tests;

/// <summary>Stream-Cursor values as served, with the server's clock set precisely.</summary>
public sealed class CursorPolicyTests
{
    private static readonly CursorOptions Defaults = new();

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(1000)]
    [InlineData(123_456)]
    public async Task The_cursor_is_the_number_of_whole_intervals_since_the_epoch(long intervals)
    {
        var time = new FakeTimeProvider(Defaults.Epoch + Defaults.Interval * intervals + TimeSpan.FromSeconds(5));
        await using var server = await ServerHarness.StartAsync(time: time, cancellationToken: Ct);

        var cursor = await LongPollCursorAsync(server, null);

        Assert.Equal(intervals.ToString(CultureInfo.InvariantCulture), cursor);
    }

    [Fact]
    public async Task Configured_cursor_options_are_used()
    {
        var options = new CursorOptions { Interval = TimeSpan.FromMinutes(1), Epoch = new DateTimeOffset(2025, 6, 1, 0, 0, 0, TimeSpan.Zero) };
        var time = new FakeTimeProvider(options.Epoch + TimeSpan.FromMinutes(7.5));
        await using var server = await ServerHarness.StartAsync(o => o.CursorOptions = options, time, Ct);

        Assert.Equal("7", await LongPollCursorAsync(server, null));
    }

    [Fact]
    public async Task The_cursor_follows_the_clock()
    {
        var time = new FakeTimeProvider(Defaults.Epoch + Defaults.Interval * 50);
        await using var server = await ServerHarness.StartAsync(time: time, cancellationToken: Ct);
        var before = await LongPollCursorAsync(server, null);

        time.Advance(Defaults.Interval * 3);

        Assert.Equal("50", before);
        Assert.Equal("53", await LongPollCursorAsync(server, null));
    }

    [Fact]
    public async Task Echoing_the_current_cursor_yields_a_larger_one()
    {
        var time = new FakeTimeProvider(Defaults.Epoch + Defaults.Interval * 1000);
        await using var server = await ServerHarness.StartAsync(time: time, cancellationToken: Ct);

        var first = long.Parse(await LongPollCursorAsync(server, null), CultureInfo.InvariantCulture);
        var second = long.Parse(await LongPollCursorAsync(server, first.ToString(CultureInfo.InvariantCulture)), CultureInfo.InvariantCulture);
        var third = long.Parse(await LongPollCursorAsync(server, second.ToString(CultureInfo.InvariantCulture)), CultureInfo.InvariantCulture);

        Assert.Equal(1000, first);
        Assert.InRange(second, 1001, 1000 + 180);
        Assert.InRange(third, second + 1, second + 180);
    }

    [Theory]
    [InlineData("5")]
    [InlineData("junk")]
    [InlineData("-1")]
    [InlineData("")]
    public async Task A_stale_or_malformed_echoed_cursor_yields_the_current_interval(string echoed)
    {
        var time = new FakeTimeProvider(Defaults.Epoch + Defaults.Interval * 1000);
        await using var server = await ServerHarness.StartAsync(time: time, cancellationToken: Ct);

        Assert.Equal("1000", await LongPollCursorAsync(server, echoed));
    }

    [Fact]
    public async Task Catch_up_reads_carry_no_cursor()
    {
        var time = new FakeTimeProvider(Defaults.Epoch + Defaults.Interval * 10);
        await using var server = await ServerHarness.StartAsync(time: time, cancellationToken: Ct);
        var name = ServerHarness.NewName();
        await server.CreateAsync(name, "text/plain", "abc", Ct);

        using var response = await server.GetAsync($"{name}?offset=-1", Ct);

        Assert.Null(Http.Header(response, "Stream-Cursor"));
    }

    /// <summary>A long-poll that has data at once (so it never waits) and its cursor.</summary>
    private static async Task<string> LongPollCursorAsync(ServerHarness server, string? cursor)
    {
        var name = ServerHarness.NewName();
        await server.CreateAsync(name, "text/plain", "abc", Ct);
        var query = $"{name}?offset=-1&live=long-poll" + (cursor is null ? "" : "&cursor=" + Uri.EscapeDataString(cursor));
        using var response = await server.GetAsync(query, Ct);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var value = Http.Header(response, "Stream-Cursor");
        Assert.NotNull(value);
        Assert.Matches("^[0-9]+$", value);
        return value;
    }
}
